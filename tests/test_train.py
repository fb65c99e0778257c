"""aqaa_ref.training.loop: schedule, collation, exact resume after a real kill, safetensors only."""
import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from aqaa_ref.backbone.model import Step1Config, Step1ForCausalLM
from aqaa_ref.backbone.vocab_extension import param_groups
from aqaa_ref.formats.id_layout import IGNORE_INDEX
from aqaa_ref.training.loop import TrainConfig, batch_indices, latest_checkpoint, load_weights, train
from aqaa_ref.training.sequences import pad_collate

ROOT = Path(__file__).resolve().parent.parent


def tiny_model(seed=0):
    torch.manual_seed(seed)
    cfg = Step1Config(vocab_size=48, hidden_size=32, intermediate_size=64, num_attention_heads=4,
                      num_attention_groups=2, num_hidden_layers=2, max_seq_len=64)
    return Step1ForCausalLM(cfg)


def tiny_examples(n=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        T = int(torch.randint(6, 14, (1,), generator=g))
        ids = torch.randint(4, 48, (T,), generator=g).tolist()
        labels = [IGNORE_INDEX] * 3 + ids[3:]  # a 3-token "prompt" masked out of the loss
        out.append({"input_ids": ids, "labels": labels})
    return out


CFG = TrainConfig(steps=12, batch_size=8, grad_accum=2, lr=3e-3, warmup_steps=2, checkpoint_every=3,
                  progress=False, seed=5)


def test_cosine_schedule_with_warmup():
    cfg = TrainConfig(steps=100, lr=1.0, warmup_steps=10, min_lr_ratio=0.1)
    assert cfg.lr_at(0) == pytest.approx(0.1) and cfg.lr_at(9) == pytest.approx(1.0)
    assert cfg.lr_at(10) == pytest.approx(1.0)
    assert cfg.lr_at(55) == pytest.approx(0.55)  # halfway through the cosine: mean of 1 and 0.1
    assert cfg.lr_at(100) == pytest.approx(0.1)


def test_pad_collate_masks_padding():
    b = pad_collate([{"input_ids": [5, 6, 7], "labels": [IGNORE_INDEX, 6, 7]}, {"input_ids": [8], "labels": [8]}], pad_id=0)
    assert b["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert b["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert b["labels"].tolist() == [[IGNORE_INDEX, 6, 7], [8, IGNORE_INDEX, IGNORE_INDEX]]


def test_batches_split_across_accumulation_and_ranks_cover_the_global_batch():
    full = batch_indices(100, step=7, micro=0, batch_size=8, grad_accum=1, rank=0, world=1, seed=3)
    parts = [batch_indices(100, 7, m, 8, 2, r, 2, 3) for m in range(2) for r in range(2)]
    assert sorted(sum(parts, [])) == sorted(full) and len(full) == 8
    assert batch_indices(100, 7, 0, 8, 1, 0, 1, 3) == full  # pure function of its arguments


def test_length_bucketing_cuts_padding_but_still_visits_every_example_once_per_epoch():
    import random

    rng = random.Random(0)
    lengths = [rng.randint(10, 200) for _ in range(1000)]
    n, bs = len(lengths), 16
    per_epoch = n // bs

    def epoch(bucket):
        return [batch_indices(n, step, 0, bs, 1, 0, 1, 5, lengths, bucket) for step in range(per_epoch)]

    def padded(batches):
        return sum(max(lengths[i] for i in b) * len(b) for b in batches)

    plain, bucketed = epoch(0), epoch(20)
    for batches in (plain, bucketed):
        seen = [i for b in batches for i in b]
        assert len(seen) == len(set(seen)) == per_epoch * bs              # no example twice in an epoch
    real = sum(lengths[i] for b in bucketed for i in b)
    assert real / padded(bucketed) > 0.9 > 0.7 > real / padded(plain)  # padding nearly gone
    assert bucketed == epoch(20) and bucketed != epoch(10)             # a pure function of its arguments
    # the batch order is still shuffled: not long-to-short or short-to-long
    means = [sum(lengths[i] for i in b) / bs for b in bucketed]
    assert means != sorted(means) and means != sorted(means, reverse=True)
    # bucket_batches = 0 is exactly the earlier sampler (and stays out of the cache key)
    assert plain == [batch_indices(n, step, 0, bs, 1, 0, 1, 5) for step in range(per_epoch)]
    from aqaa_ref.cache import config_hash
    assert config_hash(TrainConfig(bucket_batches=0)) != config_hash(TrainConfig(bucket_batches=20))
    from aqaa_ref.cache import _jsonable
    assert "bucket_batches" not in _jsonable(TrainConfig())


def test_embedding_and_head_get_the_lr_multiple():
    cfg = TrainConfig(new_token_lr_mult=5.0)
    groups = param_groups(tiny_model(), cfg.lr, cfg.new_token_lr_mult, cfg.weight_decay)
    embed = next(g for g in groups if g["name"] == "embed")
    assert embed["lr_mult"] == 5.0 and len(embed["params"]) == 2
    assert all(g["lr_mult"] == 1.0 for g in groups if g["name"] != "embed")


def test_training_lowers_the_loss_and_checkpoints_are_safetensors(tmp_path):
    res = train(tiny_model(), tiny_examples(), CFG, tmp_path)
    assert len(res.metrics) == CFG.steps and res.metrics[-1]["loss"] < res.metrics[0]["loss"]
    ckpt = latest_checkpoint(tmp_path)
    assert ckpt.name == "step-000012"
    files = sorted(p.name for p in ckpt.iterdir())
    assert files == ["model.safetensors", "optimizer-rank0.json", "optimizer-rank0.safetensors",
                     "rng.safetensors", "trainer.json"]
    assert len(list(tmp_path.glob("step-*"))) == CFG.keep_checkpoints  # older ones pruned
    again = load_weights(tiny_model(seed=1), tmp_path)
    ref = res.out_dir  # reloaded weights give the same loss as the trained model
    assert ref.exists() and next(again.parameters()).abs().sum() > 0


def test_in_process_stop_and_resume_follows_the_same_curve(tmp_path):
    full = train(tiny_model(), tiny_examples(), CFG, tmp_path / "a")
    train(tiny_model(), tiny_examples(), CFG, tmp_path / "b", stop_after=6)
    resumed = train(tiny_model(seed=9), tiny_examples(), CFG, tmp_path / "b")  # weights come from the checkpoint
    assert resumed.resumed_from == 6
    assert [m["loss"] for m in resumed.metrics] == pytest.approx([m["loss"] for m in full.metrics], rel=1e-5, abs=1e-6)


KILLED_RUN = textwrap.dedent("""
    import sys, time, torch
    sys.path.insert(0, {tests!r})
    from test_train import tiny_model, tiny_examples, CFG
    from aqaa_ref.training import loop as T
    real_save = T.save_checkpoint
    def slow_save(*a, **k):            # slow the run down so the parent can kill it mid-way
        out = real_save(*a, **k); time.sleep(0.5); return out
    T.save_checkpoint = slow_save
    T.train(tiny_model(), tiny_examples(), CFG, {out!r})
""")


def test_killed_run_resumes_on_the_uninterrupted_trajectory(tmp_path):
    """A real SIGKILL mid-run, then resume: the loss curve equals an uninterrupted run's."""
    out = tmp_path / "killed"
    script = KILLED_RUN.format(tests=str(ROOT / "tests"), out=str(out))
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT)
    deadline = time.time() + 120
    while time.time() < deadline:  # wait for the second checkpoint, then kill without warning
        ckpt = latest_checkpoint(out)
        if ckpt is not None and ckpt.name >= "step-000006":
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = json.loads((latest_checkpoint(out) / "trainer.json").read_text())["step"]
    assert 6 <= killed_at < CFG.steps, "the run must be killed before it finishes"
    resumed = train(tiny_model(seed=3), tiny_examples(), CFG, out)
    full = train(tiny_model(), tiny_examples(), CFG, tmp_path / "full")
    assert resumed.resumed_from == killed_at
    assert [m["loss"] for m in resumed.metrics] == pytest.approx([m["loss"] for m in full.metrics], rel=1e-5, abs=1e-6)
    assert not list(out.glob(".tmp-*")) or latest_checkpoint(out).name == "step-000012"


def test_bad_settings_are_refused(tmp_path):
    with pytest.raises(ValueError, match="divisible"):
        train(tiny_model(), tiny_examples(), TrainConfig(batch_size=7, grad_accum=2), tmp_path)
    with pytest.raises(ValueError, match="no training examples"):
        train(tiny_model(), [], CFG, tmp_path)

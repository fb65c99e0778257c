"""Seconds per training step of the toy recipe's pre-training and SFT-1, on this machine now.

    .venv/bin/python benchmarks/bench_stage_speed.py              # ~5 minutes on 2 idle cores
    .venv/bin/python benchmarks/bench_stage_speed.py --threads 1  # as the backbone chain trains beside the vocoder

A few steps of each stage's real configuration (examples, batch) into a temporary folder,
under three variants measured in the same run, so their ratios are comparable on a shared
machine: the recipe as it is (fp32 here unless this CPU runs bf16 faster: aqaa_ref.precision),
with length-bucketed batches (``bucket_batches=20``: less padding), and with bf16 autocast
forced on. The per-step time extrapolates to the recipe's step count. Also prints the share of
real (unpadded) tokens in the batches each sampler makes.
"""
import argparse
import os
import tempfile
import time
from dataclasses import replace

import torch
from accelerate.state import AcceleratorState

from aqaa_ref import precision
from aqaa_ref.training.loop import batch_indices, example_length, train
from aqaa_ref.training.recipe import Assets, Recipe
from aqaa_ref.training.sequences import pretrain_examples, sft_examples

VARIANTS = (("recipe (random batches)", None, 0, 10), ("length-bucketed (20)", None, 20, 10), ("bf16 forced", "1", 0, 4))


def real_token_share(examples, cfg, steps: int = 50) -> float:
    lengths = [example_length(e) for e in examples]
    real = padded = 0
    for step in range(steps):
        idx = batch_indices(len(examples), step, 0, cfg.batch_size, 1, 0, 1, cfg.seed, lengths, cfg.bucket_batches)
        real += sum(lengths[i] for i in idx)
        padded += max(lengths[i] for i in idx) * len(idx)
    return real / padded


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    r = Recipe.from_preset("toy")
    a = Assets(r, progress=False)
    print(f"torch threads {torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f}, "
          f"cpu {torch.backends.cpu.get_cpu_capability()}, bf16 faster here: {precision.bf16_is_faster()}")
    stages = [("pretrain", pretrain_examples(a.builder, a.corpus, r.pretrain_mix, r.seed), r.pretrain),
              ("sft1", sft_examples(a.builder, a.corpus.split("train"), r.aqta_fraction, r.seed), r.sft1)]
    for name, examples, cfg in stages:
        for label, bf16, bucket, steps in VARIANTS:
            if bf16 is not None:
                os.environ["AQAA_BF16"] = bf16
            precision.bf16_is_faster.cache_clear()
            AcceleratorState._reset_state(True)       # accelerate fixes mixed precision once per process
            short = replace(cfg, steps=steps, checkpoint_every=0, progress=False, bucket_batches=bucket)
            model = a.new_model()
            with tempfile.TemporaryDirectory() as d:
                t0 = time.perf_counter()
                train(model, examples, short, d)
                per_step = (time.perf_counter() - t0) / steps
            os.environ.pop("AQAA_BF16", None)
            print(f"{name:<9} {label:<24} {per_step:5.2f} s/step -> {cfg.steps} steps = {per_step * cfg.steps / 60:5.1f} min"
                  f"   (real tokens {real_token_share(examples, short):.0%} of the padded batch)", flush=True)
    precision.bf16_is_faster.cache_clear()


if __name__ == "__main__":
    main()

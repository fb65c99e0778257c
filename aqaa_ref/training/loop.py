"""One training loop for every stage: pre-training, SFT-1, SFT-2 and DPO.

Built on 🤗 accelerate, so the same code runs on a CPU, one GPU, or several processes
under FSDP / DeepSpeed (``accelerate launch --config_file ...``). What a stage changes is
only its examples and its loss function.

Reproducibility and resumption, the design in three rules:

1. **Batches are a pure function of the step.** Epoch ``e`` shuffles the examples with a
   generator seeded by ``(seed, e)``; optimizer step ``s``, micro-step ``m`` takes a fixed
   slice of that order. A resumed run recomputes exactly the batches it would have seen.
2. **Checkpoints hold everything that changes**: weights, the AdamW moments, the
   scheduler position, the step, the metrics so far, the torch RNG state, all in
   safetensors (tensors) + JSON (the rest), never pickle.
3. **Checkpoints are swapped in atomically**: written to a temporary folder, renamed to
   ``step-NNNNNN``, then ``latest`` (a one-line file) is atomically replaced to point at
   it. A run killed at any instant resumes from the last complete checkpoint.

So a run killed at step 37 and resumed follows the same loss curve as an uninterrupted
one (``tests/test_train.py`` kills one and checks).
"""
from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from aqaa_ref.backbone.vocab_extension import param_groups
from aqaa_ref.cache import atomic_write_json, atomic_write_text
from aqaa_ref.formats.id_layout import IGNORE_INDEX
from aqaa_ref.lr_schedule import warmup_cosine
from aqaa_ref.training.sequences import pad_collate
from aqaa_ref.precision import mixed_precision



@dataclass
class TrainConfig:
    """Optimisation settings shared by every stage (per-stage presets live in ``stages``)."""

    #: added after toy stages were cached: at these values they stay out of the cache key
    __key_defaults__ = {"bucket_batches": 0}

    steps: int = 200                # optimizer steps
    batch_size: int = 16            # sequences per optimizer step (across processes and accumulation)
    grad_accum: int = 1             # micro-batches per optimizer step (per process)
    lr: float = 1e-3
    min_lr_ratio: float = 0.1       # cosine decays to lr * min_lr_ratio
    warmup_steps: int = 10
    weight_decay: float = 0.01
    betas: tuple = (0.9, 0.95)
    max_grad_norm: float = 1.0
    new_token_lr_mult: float = 1.0  # embedding + lm_head LR multiple (5.0 in pre-training stage 1)
    mixed_precision: str = "no"     # "no" | "bf16" (on a CPU: bf16 where it is faster, aqaa_ref.precision)
    seed: int = 0
    checkpoint_every: int = 50      # 0: only at the end
    keep_checkpoints: int = 2
    log_every: int = 10
    progress: bool = True
    # length bucketing: 0 = batches of random examples; N = each window of N batches' worth of
    # shuffled examples is sorted by length before it is cut into batches (then the batches are
    # shuffled), so a batch holds examples of similar length and little padding
    bucket_batches: int = 0

    def lr_at(self, step: int) -> float:
        """Linear warm-up, then cosine from lr to lr * min_lr_ratio. ``step`` counts from 0."""
        return warmup_cosine(step, self.steps, self.lr, self.warmup_steps, self.min_lr_ratio)


@dataclass
class TrainResult:
    out_dir: Path
    metrics: list = field(default_factory=list)  # one dict per logged step
    seconds: float = 0.0
    resumed_from: int = 0

    @property
    def final_loss(self) -> float:
        return self.metrics[-1]["loss"] if self.metrics else float("nan")


# ----------------------------------------------------------------------------- batches



def epoch_order(n_examples: int, epoch: int, seed: int, batch_size: int, lengths=None,
                bucket_batches: int = 0) -> torch.Tensor:
    """The order an epoch visits the examples in: a seeded shuffle, optionally length-bucketed.

    With ``bucket_batches`` = N > 0 (and ``lengths``), the shuffled order is cut into windows
    of N * batch_size examples, each window is sorted by length and cut into batches, and the
    full batches of all windows are shuffled (the ragged rest goes last, as the unused tail)::

        shuffle -> [w0 | w1 | ...] -> sort each window by length -> batches -> shuffle batches
    """
    g = torch.Generator().manual_seed(seed * 100_003 + epoch)
    order = torch.randperm(n_examples, generator=g)
    if not bucket_batches or lengths is None:
        return order
    window = bucket_batches * batch_size
    full, rest = [], []
    for i in range(0, n_examples, window):
        chunk = sorted(order[i:i + window].tolist(), key=lambda j: lengths[j])
        cut = len(chunk) // batch_size * batch_size
        full += [chunk[j:j + batch_size] for j in range(0, cut, batch_size)]
        rest += chunk[cut:]
    perm = torch.randperm(len(full), generator=g).tolist()
    return torch.tensor([i for b in perm for i in full[b]] + rest, dtype=torch.long)


def example_length(example: dict) -> int:
    """Tokens an example occupies in a padded batch: its longest id list (a DPO pair: the longer side)."""
    return max((len(v) for k, v in example.items() if k.endswith("input_ids")), default=0)


def batch_indices(n_examples: int, step: int, micro: int, batch_size: int, grad_accum: int,
                  rank: int, world: int, seed: int, lengths=None, bucket_batches: int = 0) -> list[int]:
    """Example indices for (optimizer ``step``, micro-step ``micro``, process ``rank``).

    The global batch of a step is ``batch_size`` consecutive examples of the epoch's order
    (:func:`epoch_order`: shuffled, optionally length-bucketed); it is split into ``grad_accum``
    micro-batches, and each micro-batch into ``world`` rank slices. Depends only on its
    arguments (that is what makes resume exact)."""
    per_epoch = max(1, n_examples // batch_size)
    epoch, k = divmod(step, per_epoch)
    order = epoch_order(n_examples, epoch, seed, batch_size, lengths, bucket_batches)
    glob = order[k * batch_size:(k + 1) * batch_size]
    micro_size = batch_size // grad_accum
    mb = glob[micro * micro_size:(micro + 1) * micro_size]
    return mb[rank::world].tolist()


def lm_loss(model, batch: dict, token_norm: float) -> tuple[torch.Tensor, dict]:
    """Next-token cross-entropy summed over label positions, divided by ``token_norm``.

    Dividing by the *global* count of label tokens in the optimizer step (not the local
    micro-batch's) makes the gradient identical however the step is split across
    micro-batches and processes. labels (B, T) are aligned with input_ids; position t
    predicts labels[t + 1]."""
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits  # (B, T, V)
    logits, labels = logits[:, :-1].float(), batch["labels"][:, 1:]
    loss_sum = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), labels.reshape(-1),
                                                 ignore_index=IGNORE_INDEX, reduction="sum")
    n = (labels != IGNORE_INDEX).sum()
    return loss_sum / token_norm, {"tokens": n.item(), "loss_sum": loss_sum.item()}


def count_label_tokens(batch: dict) -> int:
    return int((batch["labels"][:, 1:] != IGNORE_INDEX).sum())



# ----------------------------------------------------------------------------- checkpoints

def _optimizer_tensors(opt: torch.optim.Optimizer) -> tuple[dict, dict]:
    sd = opt.state_dict()
    tensors = {f"state.{i}.{k}": _local(v).detach().cpu().contiguous() for i, st in sd["state"].items()
               for k, v in st.items() if torch.is_tensor(v)}
    groups = [{k: v for k, v in g.items() if k != "params"} | {"params": list(g["params"])} for g in sd["param_groups"]]
    return tensors, {"param_groups": groups}


def _local(t: torch.Tensor) -> torch.Tensor:
    """This rank's shard of a DTensor (FSDP2 parameters and their AdamW moments); else ``t``."""
    return t.to_local() if hasattr(t, "to_local") else t


def _load_optimizer(opt: torch.optim.Optimizer, tensors: dict, meta: dict) -> None:
    params = [p for g in opt.param_groups for p in g["params"]]
    state: dict = {}
    for key, v in tensors.items():
        _, i, k = key.split(".", 2)
        p = params[int(i)]
        if hasattr(p, "device_mesh") and v.ndim:  # FSDP2: the saved local shard becomes a DTensor again
            from torch.distributed.tensor import DTensor
            v = DTensor.from_local(v.to(p.device), p.device_mesh, p.placements, shape=p.shape, stride=p.stride())
        state.setdefault(int(i), {})[k] = v
    groups = [dict(g, betas=tuple(g["betas"])) if "betas" in g else g for g in meta["param_groups"]]
    opt.load_state_dict({"state": state, "param_groups": groups})


def save_checkpoint(out_dir: Path, step: int, model_state: dict, opt, metrics: list, cfg: TrainConfig,
                    rank: int = 0, world: int = 1, keep: int = 2) -> Path:
    """Write ``out_dir/step-NNNNNN`` atomically and point ``out_dir/latest`` at it."""
    out_dir = Path(out_dir)
    final = out_dir / f"step-{step:06d}"
    tmp = out_dir / f".tmp-step-{step:06d}"
    if rank == 0:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        save_file({k: v.detach().cpu().contiguous() for k, v in model_state.items()}, str(tmp / "model.safetensors"))
        atomic_write_json(tmp / "trainer.json", {"step": step, "metrics": metrics, "config": asdict(cfg), "world": world})
        save_file({"torch_rng": torch.get_rng_state()}, str(tmp / "rng.safetensors"))
    opt_tensors, opt_meta = _optimizer_tensors(opt)
    if world > 1:  # every rank owns its optimizer shard; wait for rank 0's folder
        torch.distributed.barrier()
    save_file(opt_tensors, str(tmp / f"optimizer-rank{rank}.safetensors"))
    atomic_write_json(tmp / f"optimizer-rank{rank}.json", opt_meta)
    if world > 1:
        torch.distributed.barrier()
    if rank == 0:
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        atomic_write_text(out_dir / "latest", final.name + "\n")
        for old in sorted(out_dir.glob("step-*"))[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    if world > 1:
        torch.distributed.barrier()
    return final


def latest_checkpoint(out_dir) -> Path | None:
    ptr = Path(out_dir) / "latest"
    if not ptr.exists():
        return None
    path = Path(out_dir) / ptr.read_text().strip()
    return path if (path / "trainer.json").exists() else None


# ----------------------------------------------------------------------------- the loop

LossFn = Callable[[torch.nn.Module, dict, float], tuple]


def train(model: torch.nn.Module, examples: list[dict], cfg: TrainConfig, out_dir, *,
          loss_fn: LossFn = lm_loss, token_count: Callable[[dict], int] = count_label_tokens,
          pad_id: int = 0, accelerator=None, desc: str = "train",
          stop_after: int | None = None) -> TrainResult:
    """Train ``model`` on ``examples`` for ``cfg.steps`` optimizer steps; resume if possible.

    Args:
        examples: dicts of id lists (``input_ids``, ``labels``, ...), collated by :func:`pad_collate`.
        loss_fn: ``(model, batch, norm) -> (loss, stats)``; ``norm`` is ``token_count`` summed
            over the whole optimizer step (all micro-batches, all processes).
        out_dir: checkpoints go here; an existing ``latest`` checkpoint is resumed.
        stop_after: end after this many steps *of this call* (to simulate a killed run).
    Returns:
        TrainResult with the metrics of every logged step (loss per optimizer step).
    """
    from accelerate import Accelerator

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if cfg.batch_size % cfg.grad_accum:
        raise ValueError(f"batch_size {cfg.batch_size} is not divisible by grad_accum {cfg.grad_accum}")
    if not examples:
        raise ValueError("no training examples")
    acc = accelerator or Accelerator(mixed_precision=mixed_precision(cfg.mixed_precision),
                                         cpu=not torch.cuda.is_available())
    rank, world = acc.process_index, acc.num_processes
    if (cfg.batch_size // cfg.grad_accum) % world:
        raise ValueError(f"micro-batch {cfg.batch_size // cfg.grad_accum} is not divisible by {world} processes")
    torch.manual_seed(cfg.seed)

    # model and optimizer are prepared together: FSDP2 and DeepSpeed shard the model and then
    # re-point the optimizer at the sharded parameters (accelerate refuses them one by one)
    opt = torch.optim.AdamW(param_groups(model, cfg.lr, cfg.new_token_lr_mult, cfg.weight_decay), lr=cfg.lr,
                            betas=cfg.betas)
    model, opt = acc.prepare(model, opt)

    start, metrics = 0, []
    ckpt = latest_checkpoint(out_dir)
    if ckpt is not None:
        meta = json.loads((ckpt / "trainer.json").read_text())
        if meta["world"] != world:
            raise ValueError(f"checkpoint {ckpt} was written by {meta['world']} processes, this run has {world}")
        state = load_file(str(ckpt / "model.safetensors"))
        acc.unwrap_model(model).load_state_dict(state) if world == 1 else _load_sharded(acc, model, state)
        _load_optimizer(opt, load_file(str(ckpt / f"optimizer-rank{rank}.safetensors")),
                        json.loads((ckpt / f"optimizer-rank{rank}.json").read_text()))
        torch.set_rng_state(load_file(str(ckpt / "rng.safetensors"))["torch_rng"])
        start, metrics = meta["step"], meta["metrics"]

    end = cfg.steps if stop_after is None else min(cfg.steps, start + stop_after)
    lengths = [example_length(e) for e in examples] if cfg.bucket_batches else None
    bar = tqdm(range(start, end), desc=desc, disable=not (cfg.progress and acc.is_main_process), unit="step")
    t0 = time.perf_counter()
    model.train()
    for step in bar:
        lr = cfg.lr_at(step)
        for g in opt.param_groups:
            g["lr"] = lr * g.get("lr_mult", 1.0)
        # the normaliser is the label count of the whole optimizer step, on every rank
        micro = [pad_collate([examples[i] for i in batch_indices(len(examples), step, m, cfg.batch_size,
                                                                  cfg.grad_accum, rank, world, cfg.seed, lengths,
                                                                  cfg.bucket_batches)], pad_id)
                 for m in range(cfg.grad_accum)]
        local = torch.tensor(float(sum(token_count(b) for b in micro)), device=acc.device)
        norm = max(1.0, float(acc.reduce(local, reduction="sum"))) / world  # grads are averaged over ranks
        total, stats = 0.0, {}
        for b in micro:
            b = {k: v.to(acc.device) for k, v in b.items()}
            with acc.autocast():
                loss, st = loss_fn(model, b, norm)
            acc.backward(loss)
            total += loss.item()
            for k, v in st.items():
                stats[k] = stats.get(k, 0.0) + v
        gnorm = acc.clip_grad_norm_(model.parameters(), cfg.max_grad_norm) if cfg.max_grad_norm else None
        opt.step()
        opt.zero_grad(set_to_none=True)
        loss_all = float(acc.reduce(torch.tensor(total, device=acc.device), reduction="sum")) / world
        metrics.append({"step": step + 1, "loss": loss_all, "lr": lr,
                        "grad_norm": float(gnorm) if gnorm is not None else None, **stats})
        if cfg.progress:
            bar.set_postfix(loss=f"{loss_all:.3f}")
        done = step + 1
        if (cfg.checkpoint_every and done % cfg.checkpoint_every == 0) or done == end:
            save_checkpoint(out_dir, done, acc.get_state_dict(model), opt, metrics, cfg, rank, world,
                            cfg.keep_checkpoints)
    bar.close()
    model.eval()
    return TrainResult(out_dir, metrics, time.perf_counter() - t0, start)


def _load_sharded(acc, model, state: dict) -> None:
    """Load a full state dict into a wrapped model (FSDP1, FSDP2 or DDP; each rank keeps its shard)."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

    set_model_state_dict(model, state, options=StateDictOptions(full_state_dict=True))


def load_weights(model: torch.nn.Module, checkpoint_dir) -> torch.nn.Module:
    """Load the weights of a checkpoint folder (``step-NNNNNN`` or its parent's ``latest``)."""
    path = Path(checkpoint_dir)
    if not (path / "model.safetensors").exists():
        path = latest_checkpoint(path) or path
    if not (path / "model.safetensors").exists():
        raise FileNotFoundError(f"no model.safetensors in {checkpoint_dir}")
    model.load_state_dict(load_file(str(path / "model.safetensors")))
    return model

"""Model merge: a weighted average of checkpoints of one architecture (the paper's last step).

    W = Σ_i w_i W_i / Σ_i w_i         (5:5:1 over SFT-1, SFT-2, DPO in the paper)

The weights are normalised, so merging N copies of one model gives that model back, and
only the ratio of the weights matters. Floating-point tensors are averaged in float32 and
cast back; integer buffers (counters, ids) must be equal in every checkpoint and are
copied. Checkpoints whose parameter names or shapes differ are refused with a one-line
error naming the first difference.
"""
from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file

PAPER_WEIGHTS = (5.0, 5.0, 1.0)  # (SFT-1, SFT-2, DPO)


def check_compatible(state_dicts: list[dict], names: list[str] | None = None) -> None:
    """Raise ValueError if the state dicts do not describe the same architecture."""
    names = names or [f"checkpoint {i}" for i in range(len(state_dicts))]
    ref, ref_name = state_dicts[0], names[0]
    for sd, name in zip(state_dicts[1:], names[1:]):
        missing, extra = sorted(set(ref) - set(sd)), sorted(set(sd) - set(ref))
        if missing or extra:
            what = f"lacks {missing[0]!r}" if missing else f"has extra {extra[0]!r}"
            raise ValueError(f"cannot merge: {name} {what} (architectures differ from {ref_name})")
        for k, v in ref.items():
            if sd[k].shape != v.shape:
                raise ValueError(f"cannot merge: {k!r} is {tuple(v.shape)} in {ref_name} but {tuple(sd[k].shape)} in {name}")


def merge_state_dicts(state_dicts: list[dict], weights=None) -> dict:
    """Weighted average of state dicts. ``weights``: one non-negative number each (default equal)."""
    if not state_dicts:
        raise ValueError("cannot merge: no checkpoints given")
    weights = [1.0] * len(state_dicts) if weights is None else [float(w) for w in weights]
    if len(weights) != len(state_dicts):
        raise ValueError(f"cannot merge: {len(state_dicts)} checkpoints but {len(weights)} weights")
    if any(w < 0 for w in weights) or sum(weights) <= 0:
        raise ValueError(f"cannot merge: weights must be non-negative with a positive sum, got {weights}")
    check_compatible(state_dicts)
    total = sum(weights)
    merged = {}
    for k, v in state_dicts[0].items():
        if v.is_floating_point():
            acc = torch.zeros_like(v, dtype=torch.float32)
            for sd, w in zip(state_dicts, weights):
                acc += (w / total) * sd[k].float()
            merged[k] = acc.to(v.dtype)
        else:
            if any(not torch.equal(sd[k], v) for sd in state_dicts[1:]):
                raise ValueError(f"cannot merge: non-float tensor {k!r} differs between checkpoints")
            merged[k] = v.clone()
    return merged


def merge_checkpoints(paths, weights=PAPER_WEIGHTS) -> dict:
    """Merge checkpoint folders (``step-NNNNNN``, a run folder with ``latest``, or a
    ``model.safetensors`` file). Returns the merged state dict."""
    from aqaa_ref.training.loop import latest_checkpoint

    files = []
    for p in map(Path, paths):
        if p.is_dir() and not (p / "model.safetensors").exists():
            p = latest_checkpoint(p) or p
        f = p / "model.safetensors" if p.is_dir() else p
        if not f.exists():
            raise FileNotFoundError(f"no model.safetensors at {p}")
        files.append(f)
    sds = [load_file(str(f)) for f in files]
    if len(weights) != len(sds):
        raise ValueError(f"cannot merge: {len(sds)} checkpoints but {len(weights)} weights")
    check_compatible(sds, [str(f) for f in files])
    return merge_state_dicts(sds, weights)

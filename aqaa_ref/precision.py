"""bf16 autocast only where this CPU runs it faster than fp32, measured once per process.

Every toy model trains with bf16 autocast enabled in its config (``bf16=True``,
``mixed_precision="bf16"``). On a CPU with native bf16 matrix units (AMX, AVX512-BF16)
that is a real speed-up; on one without them (AVX2 only) PyTorch emulates bf16 and the same
training step runs several times *slower* (a toy Transformer step: 7.9 s against 1.1 s in
fp32 on an AVX2 EPYC). So a config's bf16 flag means "bf16 where it helps", decided here:

    >>> from aqaa_ref.precision import autocast
    >>> with autocast(cfg.bf16):          # bf16 on an AMX CPU or a GPU, fp32 on an AVX2 CPU
    ...     loss = model(x)

The decision is a measurement (a training-sized matmul, both ways), not a feature list.
``AQAA_BF16=1`` or ``=0`` forces it either way.
"""
from __future__ import annotations

import functools
import os
import time

import torch


def _best_time(fn, reps: int = 5) -> float:
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


@functools.cache
def bf16_is_faster() -> bool:
    """True when a (512 x 704) @ (704 x 256) matmul, forward and backward, runs faster under
    CPU bf16 autocast than in fp32 on this machine (about 50 ms to find out), or when
    ``AQAA_BF16`` says so."""
    forced = os.environ.get("AQAA_BF16")
    if forced is not None:
        return forced.strip().lower() not in ("0", "false", "no", "")
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(512, 704, generator=gen, requires_grad=True)
    b = torch.randn(704, 256, generator=gen, requires_grad=True)

    def step(bf16: bool):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            y = a @ b
        y.float().sum().backward()

    step(False), step(True)                                   # warm-up (kernel selection)
    return _best_time(lambda: step(True)) < _best_time(lambda: step(False))


def use_bf16(requested: bool = True) -> bool:
    """Whether a config that asks for bf16 autocast on the CPU gets it (see the module docstring)."""
    return bool(requested) and bf16_is_faster()


def autocast(requested: bool = True):
    """``torch.autocast("cpu", bfloat16)``, enabled when requested and faster here."""
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=use_bf16(requested))


def mixed_precision(requested: str) -> str:
    """An accelerate ``mixed_precision`` for training: "bf16" becomes "no" on a CPU-only
    machine where bf16 is slower (a GPU keeps what was asked)."""
    if requested == "bf16" and not torch.cuda.is_available() and not bf16_is_faster():
        return "no"
    return requested

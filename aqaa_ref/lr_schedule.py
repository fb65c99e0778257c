"""The learning-rate schedule every model here trains with: linear warm-up, then cosine.

    lr(step) = peak * (step + 1) / warmup                                  step < warmup
             = peak * (floor + (1 - floor) * (1 + cos(pi * t)) / 2)         otherwise,
               t = (step - warmup) / (steps - warmup), clamped to 1

The backbone stages decay to ``min_lr_ratio`` (0.1) of the peak, the tokenizer to 0.05,
the vocoder, mel-to-wave model and recognizer to 0.1; ``step`` counts from 0.
"""
from __future__ import annotations

import math


def warmup_cosine(step: int, steps: int, peak: float, warmup: int, floor: float) -> float:
    """The learning rate at ``step`` of ``steps`` (see the module docstring)."""
    if step < warmup:
        return peak * (step + 1) / warmup
    t = (step - warmup) / max(1, steps - warmup)
    return peak * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(t, 1.0))))

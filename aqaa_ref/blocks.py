"""Building blocks shared by models that must not depend on each other.

The flow vocoder's U-Net and the independent recognizer that judges its audio both run
self-attention over mel frames; the block lives here so the judge imports nothing from
the model it judges.
"""
from __future__ import annotations

import math

import torch.nn as nn


class TransformerBlock(nn.Module):
    """Pre-norm self-attention + MLP over frames, padded frames masked out of the keys."""

    def __init__(self, dim: int, n_heads: int):
        super().__init__()
        self.n_heads = n_heads
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.out = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x, mask):
        """x: (B, C, F), mask: (B, 1, F) -> (B, C, F)."""
        B, C, T = x.shape
        h = x.transpose(1, 2)                                         # (B, F, C)
        q, k, v = self.qkv(self.norm1(h)).view(B, T, 3, self.n_heads, C // self.n_heads).permute(2, 0, 3, 1, 4)
        # softmax(q k^T / sqrt(d) + mask) v, eager (fast on CPU for backward)    (B, nh, F, hs)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])       # (B, nh, F, F)
        att = att.masked_fill(mask[:, :, None, :] == 0, float("-inf")).softmax(dim=-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, C)                 # (B, F, C)
        h = h + self.out(y)
        h = h + self.mlp(self.norm2(h))
        return h.transpose(1, 2) * mask

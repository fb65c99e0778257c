"""Encoder building blocks: ConvNeXt-style 1-D blocks, causal or centred.

A block is ``x + MLP(LayerNorm(depthwise_conv(x)))``. Everything acts per frame except the
depthwise convolution, so a causal block (left padding only) makes output frame t depend
on input frames ``t - (kernel - 1) .. t`` only. A stack of them is causal with a finite
receptive field: :attr:`ConvStack.receptive_field` frames. That is what lets the
tokenizers encode a stream chunk by chunk and get the offline tokens exactly.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class ConvNeXtBlock(nn.Module):
    """One ConvNeXt-1D block. (B, T, d) -> (B, T, d)."""

    def __init__(self, dim: int, kernel: int = 5, expand: int = 2, causal: bool = True, dropout: float = 0.0):
        super().__init__()
        self.kernel, self.causal = kernel, causal
        self.dwconv = nn.Conv1d(dim, dim, kernel, groups=dim)
        self.norm = nn.LayerNorm(dim)
        self.up = nn.Linear(dim, expand * dim)
        self.down = nn.Linear(expand * dim, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = self.kernel - 1
        pad = (k, 0) if self.causal else (k // 2, k - k // 2)
        y = self.dwconv(F.pad(x.transpose(1, 2), pad)).transpose(1, 2)  # (B, T, d)
        y = self.down(self.drop(F.gelu(self.up(self.norm(y)))))
        return x + y


class ConvStack(nn.Module):
    """``n_layers`` blocks then a LayerNorm. (B, T, d) -> (B, T, d)."""

    def __init__(self, dim: int, n_layers: int, kernel: int = 5, expand: int = 2, causal: bool = True,
                 dropout: float = 0.0):
        super().__init__()
        self.blocks = nn.ModuleList(ConvNeXtBlock(dim, kernel, expand, causal, dropout) for _ in range(n_layers))
        self.norm = nn.LayerNorm(dim)
        self.receptive_field = 1 + n_layers * (kernel - 1)  # frames, looking back (causal)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return self.norm(x)


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())

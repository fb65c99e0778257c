"""The flow model's velocity estimator: a 1-D U-Net of ResNet and Transformer blocks.

CosyVoice's ``ConditionalDecoder`` (which Step-Audio's vocoder reuses), rewritten small:

    t (B,) -> sinusoidal embedding -> MLP -> temb (B, T_dim)
    h = concat(x_t, mu [, speaker prompt]) (B, 2 * n_mels [+ n_mels], F)
    down level i:  ResNet1D(h, temb) -> Transformer blocks -> keep as skip_i -> downsample x2
    mid:           (ResNet1D -> Transformer blocks) x n_mid        at the lowest rate
    up level i:    upsample x2 -> concat(h, skip_i) -> ResNet1D -> Transformer blocks
    out:           conv block -> 1x1 conv -> velocity (B, n_mels, F)

Every block multiplies by the frame mask so padding never leaks into real frames. Any
length works: downsampling rounds up (ceil(F / 2)), upsampling is cropped to the skip.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from aqaa_ref.blocks import TransformerBlock


@dataclass(frozen=True)
class UNetConfig:
    n_mels: int = 80
    channels: tuple = (96, 160)   # one down/up level per entry; the last entry is the lowest rate
    n_mid: int = 2                 # mid blocks (ResNet + Transformers) at the lowest rate
    n_transformer: int = 1         # Transformer blocks after each ResNet block
    n_heads: int = 4
    time_dim: int = 64             # sinusoidal time embedding width (MLP output is 4 x this)
    speaker_prompt: bool = False   # an optional extra input: a prompt mel aligned to the frames
    groups: int = 8                # GroupNorm groups


def sinusoidal_embedding(t: torch.Tensor, dim: int, scale: float = 1000.0) -> torch.Tensor:
    """t: (B,) in [0, 1] -> (B, dim): [sin(s t w_k), cos(s t w_k)], w_k = 10000^(-k / (dim/2 - 1))."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device) / max(1, half - 1))
    arg = scale * t.float()[:, None] * freqs[None, :]   # (B, half)
    return torch.cat([arg.sin(), arg.cos()], dim=-1)


class ConvNormAct(nn.Module):
    """Conv1d(k=3) -> GroupNorm -> SiLU (CosyVoice: Mish), masked. (B, C_in, F) -> (B, C_out, F)."""

    def __init__(self, c_in: int, c_out: int, groups: int):
        super().__init__()
        self.conv = nn.Conv1d(c_in, c_out, 3, padding=1)
        self.norm = nn.GroupNorm(groups, c_out)

    def forward(self, x, mask):
        return F.silu(self.norm(self.conv(x * mask))) * mask


class ResNetBlock1D(nn.Module):
    """Time-conditioned residual block: block(x) + Linear(temb) -> block -> + 1x1(x)."""

    def __init__(self, c_in: int, c_out: int, temb_dim: int, groups: int):
        super().__init__()
        self.block1, self.block2 = ConvNormAct(c_in, c_out, groups), ConvNormAct(c_out, c_out, groups)
        self.time_proj = nn.Sequential(nn.SiLU(), nn.Linear(temb_dim, c_out))
        self.skip = nn.Conv1d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x, mask, temb):
        """x: (B, C_in, F), mask: (B, 1, F), temb: (B, temb_dim) -> (B, C_out, F)."""
        h = self.block1(x, mask) + self.time_proj(temb)[:, :, None]  # time enters every channel
        h = self.block2(h, mask)
        return h + self.skip(x * mask)


class Level(nn.Module):
    """One ResNet block followed by n Transformer blocks."""

    def __init__(self, c_in: int, c_out: int, cfg: UNetConfig, temb_dim: int):
        super().__init__()
        self.resnet = ResNetBlock1D(c_in, c_out, temb_dim, cfg.groups)
        self.transformers = nn.ModuleList(TransformerBlock(c_out, cfg.n_heads) for _ in range(cfg.n_transformer))

    def forward(self, x, mask, temb):
        x = self.resnet(x, mask, temb)
        for block in self.transformers:
            x = block(x, mask)
        return x


class UNet1D(nn.Module):
    """Velocity estimator v(x_t, mu, t). See the module docstring for the layout."""

    def __init__(self, cfg: UNetConfig = UNetConfig()):
        super().__init__()
        self.cfg = cfg
        temb_dim = 4 * cfg.time_dim
        self.time_mlp = nn.Sequential(nn.Linear(cfg.time_dim, temb_dim), nn.SiLU(), nn.Linear(temb_dim, temb_dim))
        c_in = (3 if cfg.speaker_prompt else 2) * cfg.n_mels
        chans = list(cfg.channels)
        self.down, self.downsample = nn.ModuleList(), nn.ModuleList()
        for i, c in enumerate(chans):
            self.down.append(Level(c_in if i == 0 else chans[i - 1], c, cfg, temb_dim))
            self.downsample.append(nn.Conv1d(c, c, 3, stride=2, padding=1) if i < len(chans) - 1 else nn.Identity())
        self.mid = nn.ModuleList(Level(chans[-1], chans[-1], cfg, temb_dim) for _ in range(cfg.n_mid))
        self.up, self.upsample = nn.ModuleList(), nn.ModuleList()
        for i in reversed(range(len(chans))):
            below = chans[-1] if i == len(chans) - 1 else chans[i + 1]   # channels arriving from below
            self.upsample.append(nn.ConvTranspose1d(below, below, 4, stride=2, padding=1)
                                 if i < len(chans) - 1 else nn.Identity())
            self.up.append(Level(below + chans[i], chans[i], cfg, temb_dim))
        self.final = ConvNormAct(chans[0], chans[0], cfg.groups)
        self.proj = nn.Conv1d(chans[0], cfg.n_mels, 1)

    def forward(self, x: torch.Tensor, mu: torch.Tensor, t: torch.Tensor, mask: torch.Tensor,
                prompt: torch.Tensor | None = None) -> torch.Tensor:
        """x, mu (, prompt): (B, n_mels, F); t: (B,) in [0, 1]; mask: (B, 1, F) -> (B, n_mels, F)."""
        temb = self.time_mlp(sinusoidal_embedding(t, self.cfg.time_dim))        # (B, 4 * time_dim)
        parts = [x, mu] + ([prompt if prompt is not None else torch.zeros_like(x)] if self.cfg.speaker_prompt else [])
        h = torch.cat(parts, dim=1)                                              # (B, 2|3 * n_mels, F)
        skips, masks = [], [mask]
        for i, (level, down) in enumerate(zip(self.down, self.downsample)):
            h = level(h, masks[-1], temb)
            skips.append(h)
            if i < len(self.down) - 1:
                h = down(h * masks[-1])                                          # (B, C, ceil(F_i / 2))
                masks.append(masks[-1][:, :, ::2])
        for level in self.mid:
            h = level(h, masks[-1], temb)
        for j, (level, up) in enumerate(zip(self.up, self.upsample)):
            i = len(self.down) - 1 - j                                           # level index, top is 0
            if j > 0:
                h = up(h)[:, :, : skips[i].shape[-1]]                            # crop an odd length back
            h = level(torch.cat([h, skips[i]], dim=1), masks[i], temb)
        return self.proj(self.final(h, mask)) * mask

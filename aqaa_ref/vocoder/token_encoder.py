"""Audio tokens -> mu, the frame-rate mel-shaped condition of the flow model.

The vocoder reads the 2:3 interleaved token stream exactly as the backbone writes it,
one LLSSS group per 120 ms, but as *codes relative to the audio block* (Step-Audio's
vocoder sees ids 0..5119)::

    position in a group      0   1   2   3   4
    stream                   L   L   S   S   S
    code range               [0, n_linguistic)   [n_linguistic, n_linguistic + n_semantic)

(``to_vocoder_codes`` converts backbone ids, offset by ``AudioVocab``, to these codes.)

Then, as in Step-Audio's flow model: token embedding -> a small Transformer encoder
(a depthwise convolution in front gives it relative position, so the same tokens give
the same features wherever a streaming window starts) -> a linear projection to the 80
mel bins -> length regulation by linear interpolation from 5 tokens to
``frames_per_group`` (12) mel frames per group::

    codes (B, 5G) -> embed (B, 5G, D) -> Transformer (B, 5G, D) -> proj (B, 5G, n_mels)
                  -> interpolate -> mu (B, n_mels, 12G)
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from aqaa_ref.formats.id_layout import GROUP, GROUP_SIZE, interleave_2_3
from aqaa_ref.vocoder.unet import TransformerBlock


def interleave_codes(linguistic, semantic, n_linguistic: int) -> torch.Tensor:
    """(Nl,), (Ns,) codebook indices -> (5G,) vocoder codes LLSSS, G = min(Nl // 2, Ns // 3).

    Semantic codes are shifted by ``n_linguistic``; the incomplete tail group is dropped.
    """
    return interleave_2_3(torch.as_tensor(linguistic, dtype=torch.long), torch.as_tensor(semantic, dtype=torch.long),
                          semantic_offset=n_linguistic)


def check_codes(codes, n_linguistic: int, n_semantic: int) -> torch.Tensor:
    """Validate an interleaved code stream and drop an incomplete tail group.

    Args:
        codes: (N,) ints (list, array or tensor): LLSSS groups of vocoder codes.
    Returns:
        (5G,) long tensor, G = N // 5 (an incomplete tail group is dropped, as Step-Audio does).
    Raises:
        ValueError (one line): a code outside [0, n_linguistic + n_semantic), or a linguistic
        code in a semantic slot or vice versa.
    """
    codes = torch.as_tensor(codes, dtype=torch.long).reshape(-1)
    n = n_linguistic + n_semantic
    if codes.numel() and (codes.min() < 0 or codes.max() >= n):
        bad = codes[(codes < 0) | (codes >= n)][0].item()
        raise ValueError(f"vocoder code {bad} out of range [0, {n}) (linguistic 0..{n_linguistic - 1}, "
                         f"semantic {n_linguistic}..{n - 1}); pass codes relative to the audio block")
    codes = codes[: codes.numel() // GROUP_SIZE * GROUP_SIZE]
    slots = codes.view(-1, GROUP_SIZE)  # (G, 5)
    if (slots[:, :GROUP[0]] >= n_linguistic).any() or (slots[:, GROUP[0]:] < n_linguistic).any():
        raise ValueError("vocoder codes are not LLSSS groups: positions 0-1 of each group must be linguistic "
                         f"codes (< {n_linguistic}) and positions 2-4 semantic codes (>= {n_linguistic})")
    return codes


def to_vocoder_codes(ids, vocab) -> torch.Tensor:
    """Backbone ids (offset by an ``AudioVocab``) -> vocoder codes 0..n_audio-1. (N,) -> (N,)."""
    ids = torch.as_tensor(ids, dtype=torch.long)
    if ids.numel() and not bool(vocab.is_audio(ids).all()):
        raise ValueError(f"not an audio id stream: ids must lie in [{vocab.linguistic_offset}, {vocab.audio_end})")
    return ids - vocab.linguistic_offset


def length_regulate(h: torch.Tensor, n_groups: list[int], frames_per_group: int) -> torch.Tensor:
    """Stretch token features to mel frames by linear interpolation, item by item.

    h: (B, D, 5 * G_max) with item b valid on its first 5 * n_groups[b] positions
    -> (B, D, frames_per_group * G_max), zero beyond each item's frames.
    Each item is interpolated alone so padding never leaks into its last frames.
    """
    B, D, _ = h.shape
    out = h.new_zeros(B, D, frames_per_group * max(n_groups, default=0))
    for b, g in enumerate(n_groups):
        if g:
            out[b, :, : g * frames_per_group] = F.interpolate(
                h[b : b + 1, :, : g * GROUP_SIZE], size=g * frames_per_group, mode="linear", align_corners=False)[0]
    return out


class TokenEncoder(nn.Module):
    """Vocoder codes (B, 5G) -> mu (B, n_mels, frames_per_group * G)."""

    def __init__(self, n_codes: int, n_mels: int = 80, dim: int = 192, n_layers: int = 3, n_heads: int = 4,
                 frames_per_group: int = 12):
        super().__init__()
        self.n_codes, self.frames_per_group = n_codes, frames_per_group
        self.embed = nn.Embedding(n_codes, dim)
        # convolutional relative position: sees the two neighbouring groups (k = 2 * 5 + 1)
        self.pos_conv = nn.Conv1d(dim, dim, 2 * GROUP_SIZE + 1, padding=GROUP_SIZE, groups=dim)
        self.layers = nn.ModuleList(TransformerBlock(dim, n_heads) for _ in range(n_layers))
        self.norm = nn.LayerNorm(dim)
        self.proj = nn.Linear(dim, n_mels)

    def forward(self, codes: torch.Tensor, n_groups: list[int] | None = None) -> torch.Tensor:
        """codes: (B, 5 * G_max) long; n_groups: valid groups per item (default: all G_max).

        Returns mu: (B, n_mels, frames_per_group * G_max), zero on padded frames.
        """
        B, N = codes.shape
        n_groups = n_groups if n_groups is not None else [N // GROUP_SIZE] * B
        valid = torch.arange(N)[None, :] < torch.tensor(n_groups)[:, None] * GROUP_SIZE  # (B, N)
        x = self.embed(codes) * valid[..., None]                    # (B, N, D)
        x = (x + self.pos_conv(x.transpose(1, 2)).transpose(1, 2)).transpose(1, 2)  # (B, D, N)
        for layer in self.layers:                                   # pre-norm, padded keys masked
            x = layer(x, valid[:, None, :].float())                 # (B, D, N)
        mel = self.proj(self.norm(x.transpose(1, 2))).transpose(1, 2)  # (B, n_mels, N)
        return length_regulate(mel, n_groups, self.frames_per_group)

"""Step-1 attention: grouped-query attention with a square-root ALiBi bias (facts §3).

Step-1 has no rotary or learned positions. Each head h adds a distance penalty to its
attention scores, growing with the square root of how far back the key is::

    score[h, i, j] = q_i . k_j / sqrt(head_dim)  -  slope_h * sqrt(i - j)     (j <= i)

Plain ALiBi (Press et al.) uses ``slope_h * (i - j)``; the square root makes far context
cheaper, so long answers (thousands of audio tokens) still see their question.

Slopes follow ALiBi. With n the largest power of two <= heads::

    slope_k = 2 ** (-8 k / n),  k = 1..n
    extra heads (when heads is not a power of two): 2 ** (-4 / n) raised to 1, 3, 5, ...

Three kernels compute the same thing (the backbone picks one by ``config.attention_kernel``):

- ``eager``: scores, + bias, softmax, @ v, written out (the math, easy to inspect).
- ``sdpa``:  ``F.scaled_dot_product_attention`` with the bias as an explicit float mask
  (the CPU default: its fused backward is ~4x faster than eager's in fp32).
- ``flex``:  ``flex_attention`` with a ``score_mod`` that computes the bias per score, so
  the (B, H, T, S) bias is never materialised. Compiled on CUDA; on CPU it runs unfused
  (slow, but exact), which is how the tests compare it.

Shapes: B batch, H query heads, G key/value groups (H % G == 0), T queries, S keys
(S = past + T with a KV cache), hd head dim. Query head h reads kv group h // (H // G).
"""
from __future__ import annotations

import math
import warnings

import torch
import torch.nn.functional as F


def alibi_slopes(n_heads: int) -> torch.Tensor:
    """ALiBi head slopes, (n_heads,) float32. ``alibi_slopes(8)`` = 1/2, 1/4, ..., 1/256."""
    if n_heads < 1:
        raise ValueError(f"n_heads must be >= 1, got {n_heads}")
    n = 2 ** int(math.floor(math.log2(n_heads)))       # largest power of two <= n_heads
    slopes = [2.0 ** (-8.0 * k / n) for k in range(1, n + 1)]
    base = 2.0 ** (-4.0 / n)                           # the extra heads interleave between
    slopes += [base ** e for e in range(1, 2 * (n_heads - n), 2)]  # exponents 1, 3, 5, ...
    return torch.tensor(slopes, dtype=torch.float32)


def alibi_bias(slopes: torch.Tensor, q_len: int, kv_len: int, sqrt: bool = True,
               key_padding: torch.Tensor | None = None, dtype=torch.float32) -> torch.Tensor:
    """Additive attention bias, (1 or B, H, q_len, kv_len).

    Queries are the last ``q_len`` of ``kv_len`` positions (a KV cache holds the first
    ``kv_len - q_len``). Disallowed entries (future keys, padded keys given by
    ``key_padding``: (B, kv_len) bool, True = real token) get the dtype's most negative
    finite value rather than -inf, so a fully padded query row stays finite.
    """
    offset = kv_len - q_len
    i = torch.arange(q_len, device=slopes.device)[:, None] + offset      # (T, 1) query positions
    j = torch.arange(kv_len, device=slopes.device)[None, :]              # (1, S) key positions
    dist = (i - j).clamp(min=0).float()                                  # (T, S)
    dist = dist.sqrt() if sqrt else dist
    bias = -slopes.float()[:, None, None] * dist                         # (H, T, S)
    allowed = (j <= i)[None, None]                                       # (1, 1, T, S)
    if key_padding is not None:
        allowed = allowed & key_padding.bool()[:, None, None, :]         # (B, 1, T, S)
    bias = bias[None].masked_fill(~allowed, torch.finfo(dtype).min)      # (1|B, H, T, S)
    return bias.to(dtype)


def eager_attention(q, k, v, bias):
    """Written-out attention. q (B,H,T,hd), k/v (B,G,S,hd), bias (1|B,H,T,S) -> (B,H,T,hd)."""
    H, G = q.shape[1], k.shape[1]
    k = k.repeat_interleave(H // G, dim=1)                               # (B, H, S, hd)
    v = v.repeat_interleave(H // G, dim=1)
    att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(q.shape[-1]))     # (B, H, T, S)
    att = att.float() + bias.float()                                     # softmax in float32
    att = torch.softmax(att, dim=-1).to(v.dtype)
    return att @ v                                                       # (B, H, T, hd)


def sdpa_attention(q, k, v, bias):
    """SDPA with the bias as a float mask. Same shapes as ``eager_attention``."""
    return F.scaled_dot_product_attention(q, k, v, attn_mask=bias.to(q.dtype), enable_gqa=True)


_compiled_flex = None


def flex_attention_alibi(q, k, v, slopes, key_padding: torch.Tensor | None = None):
    """flex_attention with the sqrt-ALiBi bias computed inside ``score_mod``.

    q (B,H,T,hd), k/v (B,G,S,hd), slopes (H,), key_padding (B,S) bool or None -> (B,H,T,hd).
    Causality and padding go in a block mask (whole blocks of masked scores are skipped).
    """
    global _compiled_flex
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention

    B, T, S = q.shape[0], q.shape[2], k.shape[2]
    offset = torch.tensor(S - T, device=q.device)         # a tensor: no recompile per decode step
    slopes = slopes.to(device=q.device, dtype=torch.float32)

    def score_mod(score, b, h, q_idx, kv_idx):
        dist = (q_idx + offset - kv_idx).clamp(min=0).to(torch.float32)
        return score - (slopes[h] * torch.sqrt(dist)).to(score.dtype)

    def mask_mod(b, h, q_idx, kv_idx):
        keep = q_idx + offset >= kv_idx
        if key_padding is not None:
            keep = keep & key_padding[b, kv_idx]
        return keep

    block_mask = create_block_mask(mask_mod, B if key_padding is not None else None, None, T, S,
                                   device=q.device)
    if q.is_cuda:
        if _compiled_flex is None:
            _compiled_flex = torch.compile(flex_attention, dynamic=False)
        return _compiled_flex(q, k, v, score_mod=score_mod, block_mask=block_mask, enable_gqa=True)
    with warnings.catch_warnings():          # "called without torch.compile": expected on CPU
        warnings.simplefilter("ignore")
        return flex_attention(q, k, v, score_mod=score_mod, block_mask=block_mask, enable_gqa=True)

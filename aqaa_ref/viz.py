"""Pictures the notebooks share: token timelines, spectrograms. matplotlib is imported lazily.

    >>> token_timeline(answer.ids, aqaa.vocab, aqaa.special)          # one coloured cell per id
    >>> spectrogram(answer.wav, ax=ax, title="answer")
"""
from __future__ import annotations

import torch

COLORS = {"text": "#4C72B0", "linguistic": "#DD8452", "semantic": "#55A868", "marker": "#222222",
          "special": "#8172B3"}


def token_kind(t: int, vocab, special) -> str:
    """One id -> "text" | "linguistic" | "semantic" | "marker" (audio start/end) | "special"."""
    if t in (special.audio_start, special.audio_end):
        return "marker"
    if t in special.all():
        return "special"
    if vocab.is_linguistic(torch.tensor(t)):
        return "linguistic"
    if vocab.is_semantic(torch.tensor(t)):
        return "semantic"
    return "text"


def token_timeline(ids, vocab, special, ax=None, title: str = "answer tokens", per_row: int = 100):
    """Draw ids as coloured cells, ``per_row`` per line (text / linguistic / semantic / markers).

    Returns the matplotlib axis."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    ids = list(ids)
    rows = max(1, -(-len(ids) // per_row))
    if ax is None:
        _, ax = plt.subplots(figsize=(min(16, 0.14 * min(len(ids), per_row) + 2), 0.5 * rows + 1.0))
    for k, t in enumerate(ids):
        r, c = divmod(k, per_row)
        ax.add_patch(Rectangle((c, -r - 0.9), 0.9, 0.8, color=COLORS[token_kind(t, vocab, special)], lw=0))
    ax.set_xlim(0, min(len(ids), per_row) or 1)
    ax.set_ylim(-rows - 0.1, 0.1)
    ax.set_yticks([-r - 0.5 for r in range(rows)])
    ax.set_yticklabels([f"{r * per_row}" for r in range(rows)], fontsize=7)
    ax.set_xlabel("position in the row")
    ax.set_title(title, fontsize=10)
    handles = [Rectangle((0, 0), 1, 1, color=c) for c in COLORS.values()]
    ax.legend(handles, list(COLORS), fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    return ax


def spectrogram(wav: torch.Tensor, ax=None, title: str = "", sample_rate: int = 16_000):
    """Log-mel spectrogram of (T,) audio, seconds on the x axis. Returns the axis."""
    import matplotlib.pyplot as plt

    from .vocoder import mel_frames

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 2.2))
    mel = mel_frames(wav.float()) if wav.numel() else torch.zeros(80, 1)
    ax.imshow(mel.numpy(), origin="lower", aspect="auto", vmin=-11, vmax=2,
              extent=(0, max(wav.numel(), 160) / sample_rate, 0, mel.shape[0]))
    ax.set_xlabel("seconds")
    ax.set_ylabel("mel bin")
    ax.set_title(title, fontsize=10)
    return ax

"""Features shared by both tokenizers: a *causal* log-mel, its normalisation, and training clips.

Why causal: Step-Audio streams audio in 240 ms chunks. If every feature only looks back,
encoding chunk by chunk can reproduce offline encoding exactly. ``aqaa_ref.audio.log_mel``
centres its 25 ms window on each frame (it peeks 12.5 ms ahead and reflect-pads the
edges), so here we frame the signal ourselves: frame ``i`` covers samples
``[160 i - 240, 160 i + 160)`` (left-padded with zeros), i.e. it ends where its 10 ms hop
ends. A clip of ``T`` samples has exactly ``T // 160`` frames, and a token that covers
samples ``[a, b)`` sees mel frames ``a // 160 .. b // 160 - 1`` and nothing later.

    >>> mel = causal_log_mel(wav)      # (T,) 16 kHz -> (T // 160, 80)

Same mel settings as :class:`aqaa_ref.audio.MelConfig` (16 kHz, n_fft 400, hop 160, 80
slaney mels up to 8 kHz, natural log clamped at 1e-5): only the framing differs.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from aqaa_ref import presets
from aqaa_ref.audio import MelConfig, estimate_f0, log_mel, peak_normalize
from aqaa_ref.data import phoneme_tokens, strided
from aqaa_ref.threads import torch_threads

MEL = MelConfig()


class TokenStreamConfig:
    """What the linguistic and semantic configs share: ``frames_per_token`` mel frames (10 ms
    each) per token, and presets read from the one table under ``component``."""

    component: ClassVar[str]

    @classmethod
    def from_preset(cls, name: str, **overrides):
        return cls(**{**presets.preset(cls.component, name), **overrides})

    @property
    def hop_samples(self) -> int:
        """Samples per token at 16 kHz (960 linguistic, 640 semantic)."""
        return self.frames_per_token * MEL.hop_length

    @property
    def rate_hz(self) -> float:
        return MEL.sample_rate / self.hop_samples
#: log-mel value of digital silence (log of the 1e-5 clamp): what padding looks like
SILENCE = math.log(1e-5)


def causal_log_mel(wav: torch.Tensor, cfg: MelConfig = MEL) -> torch.Tensor:
    """The causal log-mel, frames first. wav: (T,) or (B, T) at cfg.sample_rate ->
    (T // hop, n_mels) or (B, T // hop, n_mels). (``aqaa_ref.audio.log_mel``, framing "causal".)"""
    return log_mel(wav, cfg=cfg, framing="causal").transpose(-1, -2).contiguous()


def stack_frames(mel: torch.Tensor, k: int) -> torch.Tensor:
    """Group k consecutive frames into one vector (Paraformer's low-frame-rate stacking).

    mel: (B, F, n_mels) -> (B, F // k, k * n_mels); a trailing partial group is dropped.
    """
    B, F, M = mel.shape
    n = F // k
    return mel[:, : n * k].reshape(B, n, k * M)


@dataclass
class Clip:
    """One training clip: its log-mel, phoneme tokens, per-frame F0 and how it was spoken."""

    mel: torch.Tensor          # (F, 80) causal log-mel, F = samples // 160
    phonemes: list[str]        # eSpeak IPA tokens (aqaa_ref.data.phoneme_tokens)
    f0: torch.Tensor           # (F,) Hz per mel frame, 0 where unvoiced
    speech: object             # aqaa_ref.data.Speech (voice, rate, pitch, style, language)
    seconds: float


def frame_f0(wav: torch.Tensor, n_frames: int, sample_rate: int = MEL.sample_rate) -> torch.Tensor:
    """F0 (Hz, 0 = unvoiced) for each causal mel frame. wav: (T,) -> (n_frames,).

    ``estimate_f0`` frame j spans samples [160 j, 160 j + 640), centred at 160 j + 320;
    causal mel frame i is centred at 160 i - 40, so mel frame i takes F0 frame i - 2.
    """
    f0 = estimate_f0(wav, sample_rate)
    out = torch.zeros(n_frames)
    idx = torch.arange(n_frames) - 2
    ok = (idx >= 0) & (idx < f0.numel())
    out[ok] = f0[idx[ok]]
    return out


def load_clips(corpus, split: str = "train", limit: int | None = None, with_f0: bool = True,
               progress: bool = True) -> list[Clip]:
    """The distinct clips of a corpus split (``limit``: an evenly spaced subset), peak-normalised
    as Step-Audio does, as :class:`Clip`s."""
    utts = strided(corpus.utterances(split), limit)
    with torch_threads(1):
        return [clip_from_wav(corpus.load(r, sample_rate=MEL.sample_rate), r.phonemes, speech, with_f0)
                for speech, r in tqdm(utts, desc=f"features ({split})", unit="clip", disable=not progress)]


def clip_from_wav(wav: torch.Tensor, phonemes: str, speech=None, with_f0: bool = True) -> Clip:
    """A 16 kHz clip (T,) and its eSpeak phoneme string -> :class:`Clip` (peak-normalised first)."""
    wav = peak_normalize(wav.float())
    mel = causal_log_mel(wav)
    f0 = frame_f0(wav, mel.shape[0]) if with_f0 else torch.zeros(mel.shape[0])
    return Clip(mel, phoneme_tokens(phonemes), f0, speech, wav.numel() / MEL.sample_rate)


def mel_stats(clips: list[Clip]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-bin mean and std of the log-mel over all frames: two (n_mels,) tensors."""
    allf = torch.cat([c.mel for c in clips])
    return allf.mean(0), allf.std(0).clamp(min=1e-3)


def length_batches(lengths: list[int], max_frames: int, generator: torch.Generator) -> list[list[int]]:
    """Indices grouped into batches of similar length with at most ``max_frames`` padded frames each.

    Sorted by length, cut greedily, then the batch order is shuffled with ``generator``.
    """
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches, cur, longest = [], [], 0
    for i in order:
        longest_new = max(longest, lengths[i])
        if cur and longest_new * (len(cur) + 1) > max_frames:
            batches.append(cur)
            cur, longest_new = [], lengths[i]
        cur.append(i)
        longest = longest_new
    if cur:
        batches.append(cur)
    perm = torch.randperm(len(batches), generator=generator).tolist()
    return [batches[p] for p in perm]


def pad_stack(seqs: list[torch.Tensor], value: float = 0.0) -> torch.Tensor:
    """[(F_i, ...)] -> (B, max F_i, ...) padded at the end with ``value``."""
    return torch.nn.utils.rnn.pad_sequence(seqs, batch_first=True, padding_value=value)


def pad_clip_batch(clips: list[Clip], lookahead_frames: int, frames_per_token: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Clips -> padded mel (B, F + lookahead_frames, 80) filled with silence, and token counts (B,)."""
    mel = pad_stack([c.mel for c in clips], value=SILENCE)
    mel = F.pad(mel, (0, 0, 0, lookahead_frames), value=SILENCE)
    return mel, torch.tensor([c.mel.shape[0] // frames_per_token for c in clips])

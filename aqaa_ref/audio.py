"""Audio in, audio out: loading, Step-Audio's peak normalisation, log-mels, F0, duration.

Everything downstream (tokenizers, vocoder, evaluation) sees audio as a float32 mono
1-D tensor at a known sample rate. This module is the single place that turns files or
arrays of any shape, dtype and rate into that form, and the single place that refuses
bad input, always with :class:`AudioError` and a one-line message.

    >>> wav = load_audio("question.wav", sample_rate=16_000)   # (T,) float32, mono, 16 kHz
    >>> mel = log_mel(wav, 16_000)                              # (n_mels, frames)
"""
from __future__ import annotations

import io
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio

from aqaa_ref.cache import atomic_write_bytes

#: The tokenizers' working rate (Step-Audio resamples everything to 16 kHz).
TOKENIZER_SAMPLE_RATE = 16_000
#: Longest input accepted by default, in seconds (a documented limit, not a paper number).
MAX_SECONDS = 60.0


class AudioError(ValueError):
    """Raised for any input that is not usable audio. The message is one line naming the problem."""


def _fail(msg: str) -> AudioError:
    return AudioError(" ".join(msg.split()))  # guarantee a single line


# ----------------------------------------------------------------------------- loading

def load_audio(
    source,
    sample_rate: int = TOKENIZER_SAMPLE_RATE,
    source_rate: int | None = None,
    max_seconds: float | None = MAX_SECONDS,
    normalize: bool = False,
) -> torch.Tensor:
    """Load audio from a path, bytes or an array and return float32 mono at ``sample_rate``.

    Args:
        source: a path to a WAV/FLAC/OGG file, raw file bytes, or an array / tensor of
            samples shaped (T,), (C, T) or (T, C) (the smaller axis is taken as channels).
            Integer arrays are scaled to [-1, 1) by their dtype's range.
        sample_rate: the rate to return (resampled with torchaudio if needed).
        source_rate: the rate of an array source (required for arrays, ignored for files).
        max_seconds: refuse input longer than this (None: no limit).
        normalize: apply :func:`peak_normalize` (Step-Audio's pre-processing).

    Returns:
        (T',) float32 tensor, mono, at ``sample_rate``.

    Raises:
        AudioError: missing file, not audio, empty, NaN/inf samples, too long, bad rate.
    """
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise _fail(f"audio file not found: {path}")
        if path.is_dir():
            raise _fail(f"expected an audio file but got a directory: {path}")
        try:
            data, rate = sf.read(str(path), dtype="float32", always_2d=True)  # (T, C)
        except Exception as e:  # soundfile raises LibsndfileError / RuntimeError
            raise _fail(f"not a readable audio file: {path} ({type(e).__name__})") from None
        data = data.T  # (C, T)
        where = str(path)
    elif isinstance(source, (bytes, bytearray)):
        try:
            data, rate = sf.read(io.BytesIO(source), dtype="float32", always_2d=True)
        except Exception as e:
            raise _fail(f"bytes are not a readable audio file ({type(e).__name__})") from None
        data = data.T
        where = "audio bytes"
    else:
        if source_rate is None:
            raise _fail("source_rate is required when loading audio from an array")
        data = _array_to_float(source)
        rate = int(source_rate)
        where = "audio array"

    if rate <= 0:
        raise _fail(f"{where}: invalid sample rate {rate}")
    wav = torch.from_numpy(np.ascontiguousarray(data)).float()  # (C, T)
    if wav.numel() == 0 or wav.shape[-1] == 0:
        raise _fail(f"{where} is empty (0 samples)")
    if not torch.isfinite(wav).all():
        raise _fail(f"{where} contains NaN or infinite samples")
    seconds = wav.shape[-1] / rate
    if max_seconds is not None and seconds > max_seconds:
        raise _fail(f"{where} is {seconds:.1f} s long; the limit is {max_seconds:.0f} s (max_seconds)")
    wav = wav.mean(dim=0)  # mono mix, (T,)
    if rate != sample_rate:
        wav = resample(wav, rate, sample_rate)
    if normalize:
        wav = peak_normalize(wav)
    return wav.contiguous()


def _array_to_float(x) -> np.ndarray:
    """Array-like of shape (T,), (C, T) or (T, C) -> float32 (C, T) in [-1, 1)."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    x = np.asarray(x)
    if x.ndim == 0 or x.ndim > 2:
        raise _fail(f"audio array must be 1-D or 2-D, got shape {tuple(x.shape)}")
    if np.issubdtype(x.dtype, np.integer):
        info = np.iinfo(x.dtype)
        scale = float(max(abs(info.min), info.max + 1))
        x = x.astype(np.float32) / scale
        if info.min == 0:  # unsigned PCM (e.g. uint8) is centred at mid-range
            x = x * 2.0 - 1.0
    elif np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float32)
    else:
        raise _fail(f"audio array has unsupported dtype {x.dtype}")
    if x.ndim == 1:
        x = x[None, :]
    elif x.shape[0] > x.shape[1]:  # (T, C) -> (C, T)
        x = x.T
    return x


_RESAMPLERS: dict = {}


def resample(wav: torch.Tensor, orig_rate: int, new_rate: int) -> torch.Tensor:
    """Band-limited sinc resampling (torchaudio, kernel cached per rate pair).

    wav: (..., T) -> (..., ceil(T * new / orig)).
    """
    if orig_rate == new_rate:
        return wav
    key = (int(orig_rate), int(new_rate))
    if key not in _RESAMPLERS:
        _RESAMPLERS[key] = torchaudio.transforms.Resample(*key)
    return _RESAMPLERS[key](wav.float())


def peak_normalize(wav: torch.Tensor) -> torch.Tensor:
    """Step-Audio's pre-processing: divide by max(|x|, 0.01), then scale by 0.999. (T,) -> (T,)."""
    peak = wav.abs().max().clamp(min=0.01)
    return wav / peak * 0.999


def save_audio(path, wav, sample_rate: int) -> Path:
    """Write float audio (T,) as 16-bit PCM (WAV or FLAC by suffix), atomically.

    The file is written beside its destination and renamed into place, so an interrupted
    write never leaves a truncated file under the final name.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    x = wav.detach().cpu().numpy() if isinstance(wav, torch.Tensor) else np.asarray(wav)
    x = np.clip(x.astype(np.float32).reshape(-1), -1.0, 1.0)
    fmt = {"wav": "WAV", "flac": "FLAC"}.get(path.suffix.lower().lstrip("."))
    if fmt is None:
        raise _fail(f"unsupported audio suffix {path.suffix!r} (use .wav or .flac)")
    buf = io.BytesIO()
    sf.write(buf, x, int(sample_rate), subtype="PCM_16", format=fmt)
    return atomic_write_bytes(path, buf.getvalue(), durable=False)


def duration(wav: torch.Tensor, sample_rate: int) -> float:
    """Length in seconds of (T,) or (..., T) audio."""
    return wav.shape[-1] / float(sample_rate)


# ----------------------------------------------------------------------------- features

@dataclass(frozen=True)
class MelConfig:
    """Log-mel settings. Defaults are the tokenizers' (16 kHz, 10 ms hop, 80 bins)."""

    sample_rate: int = TOKENIZER_SAMPLE_RATE
    n_fft: int = 400
    hop_length: int = 160
    n_mels: int = 80
    f_min: float = 0.0
    f_max: float | None = 8000.0


_MEL_CACHE: dict = {}


#: how frames sit on the samples (see ``log_mel``)
FRAMINGS = ("centre", "exact", "causal")


def log_mel(wav: torch.Tensor, sample_rate: int | None = None, cfg: MelConfig = MelConfig(),
            framing: str = "centre") -> torch.Tensor:
    """Natural-log mel spectrogram (clamped at 1e-5), the one every model here uses.

    Args:
        wav: (T,) or (B, T) float audio at ``cfg.sample_rate`` (resampled if ``sample_rate`` differs).
        framing: where frame j sits, hop = ``cfg.hop_length``:
            "centre": centred on sample j * hop (torch.stft's centre padding): T // hop + 1 frames;
            "exact":  the same frames less the last, so frames * hop == T: T // hop frames (the vocoder's);
            "causal": ending at sample (j + 1) * hop, zeros before the start, no look-ahead:
                      T // hop frames (the streaming tokenizer's).
    Returns:
        (n_mels, frames) or (B, n_mels, frames).
    """
    if framing not in FRAMINGS:
        raise ValueError(f"framing must be one of {FRAMINGS}, got {framing!r}")
    if sample_rate is not None and sample_rate != cfg.sample_rate:
        wav = resample(wav, sample_rate, cfg.sample_rate)
    n_frames = wav.shape[-1] // cfg.hop_length
    centre = framing != "causal"
    if not centre:
        if n_frames == 0:
            return wav.new_zeros((*wav.shape[:-1], cfg.n_mels, 0))
        x = wav[..., : n_frames * cfg.hop_length].float()
        wav = torch.nn.functional.pad(x, (cfg.n_fft - cfg.hop_length, 0))      # zeros before the start
    key = (cfg, centre, wav.dtype)
    if key not in _MEL_CACHE:
        _MEL_CACHE[key] = torchaudio.transforms.MelSpectrogram(
            sample_rate=cfg.sample_rate, n_fft=cfg.n_fft, hop_length=cfg.hop_length,
            n_mels=cfg.n_mels, f_min=cfg.f_min, f_max=cfg.f_max, power=2.0, center=centre,
            norm="slaney", mel_scale="slaney",
        )
    mel = torch.log(_MEL_CACHE[key](wav).clamp(min=1e-5))
    return mel[..., :n_frames] if framing == "exact" else mel


def estimate_f0(
    wav: torch.Tensor,
    sample_rate: int,
    frame_seconds: float = 0.04,
    hop_seconds: float = 0.01,
    f0_min: float = 50.0,
    f0_max: float = 500.0,
    voicing_threshold: float = 0.5,
) -> torch.Tensor:
    """Frame-wise F0 in Hz by normalised autocorrelation (a small YIN-like estimator).

    A frame counts as voiced when its best normalised autocorrelation peak in the lag range
    [sr/f0_max, sr/f0_min] exceeds ``voicing_threshold`` and the frame is not near-silent;
    unvoiced frames are 0.

    Args:
        wav: (T,) float audio.
    Returns:
        (frames,) float32 F0 per hop, 0 where unvoiced.
    """
    wav = wav.float().reshape(-1)
    frame = int(round(frame_seconds * sample_rate))
    hop = int(round(hop_seconds * sample_rate))
    if wav.numel() < frame:
        return torch.zeros(0)
    frames = wav.unfold(0, frame, hop)  # (F, frame)
    frames = frames - frames.mean(dim=1, keepdim=True)
    lag_min = max(1, int(sample_rate / f0_max))
    lag_max = min(frame - 1, int(sample_rate / f0_min))
    # autocorrelation by FFT: (F, 2*frame) -> (F, frame)
    spec = torch.fft.rfft(frames, n=2 * frame)
    ac = torch.fft.irfft(spec.abs() ** 2, n=2 * frame)[:, :frame]
    energy = ac[:, :1].clamp(min=1e-9)
    # normalise by the energy of the overlapping parts so long lags are not penalised
    nac = ac / energy * (frame / (frame - torch.arange(frame).clamp(max=frame - 1)))
    window = nac[:, lag_min:lag_max + 1]
    best, idx = window.max(dim=1)
    lag = (idx + lag_min).float()
    # parabolic interpolation around the peak for sub-sample lag
    i = (idx + lag_min).clamp(1, frame - 2)
    a, b, c = nac.gather(1, (i - 1)[:, None])[:, 0], nac.gather(1, i[:, None])[:, 0], nac.gather(1, (i + 1)[:, None])[:, 0]
    denom = a - 2 * b + c
    shift = torch.where(denom.abs() > 1e-9, 0.5 * (a - c) / denom, torch.zeros_like(denom)).clamp(-0.5, 0.5)
    f0 = sample_rate / (lag + shift)
    rms = frames.pow(2).mean(dim=1).sqrt()
    loud = rms > 0.05 * rms.max().clamp(min=1e-9)
    voiced = (best > voicing_threshold) & loud
    return torch.where(voiced, f0, torch.zeros_like(f0)).float()


def median_f0(wav: torch.Tensor, sample_rate: int) -> float:
    """Median F0 (Hz) over voiced frames; NaN if nothing is voiced."""
    f0 = estimate_f0(wav, sample_rate)
    voiced = f0[f0 > 0]
    return float(voiced.median()) if voiced.numel() else math.nan


def trim_silence(wav: torch.Tensor, threshold: float = 0.02, pad: int = 0) -> torch.Tensor:
    """Drop leading and trailing samples whose |x| stays below ``threshold`` x peak. (T,) -> (T',)."""
    if wav.numel() == 0:
        return wav
    loud = (wav.abs() > threshold * wav.abs().max().clamp(min=1e-9)).nonzero()
    if loud.numel() == 0:
        return wav[:0]
    start, end = max(0, int(loud[0]) - pad), min(wav.numel(), int(loud[-1]) + 1 + pad)
    return wav[start:end]

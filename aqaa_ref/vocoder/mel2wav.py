"""Mel -> waveform: a Griffin-Lim baseline and a small trained iSTFT vocoder (Vocos-like).

The flow model of :mod:`aqaa_ref.vocoder.flow` ends in a log-mel spectrogram; this module
turns it into samples. Two ways, behind one call signature ``m2w(log_mel) -> wav``:

* :class:`GriffinLim`: no training. Invert the mel filterbank by least squares
  (mel -> linear power spectrogram), then iterate STFT / iSTFT to find a phase that is
  consistent with those magnitudes (torchaudio, 32 iterations, momentum 0.99).
* :class:`ISTFTVocoder`: a few ConvNeXt blocks at the *frame* rate predict, per frame,
  the log-magnitude and the phase of a short-time Fourier transform, and one inverse
  STFT makes the samples (the Vocos recipe). Everything runs at 100 frames/s instead of
  16,000 samples/s, which is why it trains in minutes on a CPU where a HiFi-GAN, whose
  layers upsample to the sample rate, would not. Trained here without a discriminator
  (a choice made for the CPU budget): multi-resolution STFT losses and a log-mel L1 on the
  output wave, plus an L1 on the predicted log-magnitude. Two choices for the CPU budget:
  the magnitude is the least-squares inverse of the mel (Griffin-Lim's) plus a learned
  correction (zero at initialisation), and by default ``gl_iters`` Griffin-Lim iterations
  refine the predicted phase while keeping the predicted magnitude (a free per-frame
  phase buzzes at the frame rate after minutes of CPU training; Vocos fixes that with a
  GAN and days of GPU). ``gl_iters=0`` is the pure Vocos-style output.

Mel settings (:data:`VOCODER_MEL`, a choice; the paper's vocoder uses 80 bins, n_fft 1024,
hop 256 at 22,050 Hz, fmax 8000): 80 bins, n_fft 1024, hop 160 at 16 kHz, fmax 8000. Hop
160 = 10 ms makes one LLSSS group (120 ms) exactly 12 mel frames, one linguistic token 6
and one semantic token 4, so chunk boundaries in streaming fall on whole frames.

    >>> voc = load_or_train_mel2wav(corpus, Mel2WavConfig.from_preset("toy"))
    >>> wav = voc(log_mel(ref, 16_000, VOCODER_MEL)[:, :-1])        # (F * 160,)
"""
from __future__ import annotations

import json
import random
import time
from dataclasses import asdict, dataclass, replace

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchaudio
from safetensors.torch import load_file
from tqdm.auto import tqdm

from aqaa_ref.audio import MelConfig, log_mel, peak_normalize
from aqaa_ref.cache import atomic_write_json, cache_dir, config_hash
from aqaa_ref.lr_schedule import warmup_cosine
from aqaa_ref import presets
from aqaa_ref.precision import autocast

#: The vocoder's log-mel: 16 kHz, 80 bins, n_fft 1024, hop 160 (10 ms), fmax 8 kHz.
VOCODER_MEL = MelConfig(sample_rate=16_000, n_fft=1024, hop_length=160, n_mels=80, f_min=0.0, f_max=8000.0)


def mel_frames(wav: torch.Tensor, cfg: MelConfig = VOCODER_MEL) -> torch.Tensor:
    """Log-mel with exactly T // hop frames (frame j centred on sample j * hop).

    wav: (T,) or (B, T) -> (n_mels, T // hop) or (B, n_mels, T // hop). ``log_mel`` gives one
    extra frame (centre padding); dropping it makes ``frames * hop == samples`` hold.
    """
    return log_mel(wav, cfg=cfg, framing="exact")


# ----------------------------------------------------------------------------- Griffin-Lim

class GriffinLim:
    """Log-mel -> waveform without training: least-squares inverse mel + Griffin-Lim.

    ``__call__``: (n_mels, F) or (B, n_mels, F) natural-log mel -> (F * hop,) or (B, F * hop).
    """

    def __init__(self, mel: MelConfig = VOCODER_MEL, n_iter: int = 32, momentum: float = 0.99):
        self.mel, self.n_iter, self.momentum = mel, n_iter, momentum
        self.hop_length, self.sample_rate = mel.hop_length, mel.sample_rate
        self.inverse_mel = torchaudio.transforms.InverseMelScale(
            n_stft=mel.n_fft // 2 + 1, n_mels=mel.n_mels, sample_rate=mel.sample_rate, f_min=mel.f_min,
            f_max=mel.f_max, norm="slaney", mel_scale="slaney")
        self.window = torch.hann_window(mel.n_fft)

    @torch.no_grad()
    def __call__(self, logmel: torch.Tensor) -> torch.Tensor:
        frames = logmel.shape[-1]
        if frames == 0:
            return logmel.new_zeros(logmel.shape[:-2] + (0,))
        power = self.inverse_mel(logmel.float().exp())  # (..., n_fft/2+1, F) power spectrogram
        # one extra (repeated) frame so a centred iSTFT covers exactly F * hop samples
        power = torch.cat([power, power[..., -1:]], dim=-1)
        return torchaudio.functional.griffinlim(
            power, self.window, self.mel.n_fft, self.hop_length, self.mel.n_fft, power=2.0,
            n_iter=self.n_iter, momentum=self.momentum, length=frames * self.hop_length, rand_init=False)


# ----------------------------------------------------------------------------- iSTFT vocoder

@dataclass(frozen=True)
class Mel2WavConfig:
    """The iSTFT vocoder and its training. Presets: ``tiny`` (tests), ``toy``, ``paper``."""

    name: str = "toy"
    mel: MelConfig = VOCODER_MEL
    dim: int = 160            # ConvNeXt channels
    n_layers: int = 5         # ConvNeXt blocks
    kernel_size: int = 7
    n_fft: int = 640          # the iSTFT's own window (4 x hop); hop = mel.hop_length
    # training
    seed: int = 0
    steps: int = 1000
    batch_size: int = 16
    segment_frames: int = 64  # random crops of 64 frames = 0.64 s
    lr: float = 2e-3
    warmup: int = 100
    max_clips: int = 3000     # training clips used (None: all)
    stft_resolutions: tuple = ((256, 64), (512, 128), (1024, 256))  # (n_fft, hop) of the STFT losses
    mel_loss_weight: float = 1.0
    magnitude_base: str = "pinv"  # "pinv": log|S| = least-squares inverse mel + learned correction; "none": all learned
    gl_iters: int = 16        # inference: Griffin-Lim iterations refining the predicted phase
    gl_momentum: float = 0.99
    bf16: bool = True               # bf16 autocast while training, where this CPU runs it faster (aqaa_ref.precision)

    @classmethod
    def from_preset(cls, preset: str, **overrides) -> "Mel2WavConfig":
        return cls(**{"name": preset, **presets.preset("mel2wav", preset), **overrides})


class ConvNeXtBlock(nn.Module):
    """x + gamma * Linear(GELU(Linear(LN(depthwise_conv(x))))). (B, C, F) -> (B, C, F)."""

    def __init__(self, dim: int, kernel_size: int = 7):
        super().__init__()
        self.dwconv = nn.Conv1d(dim, dim, kernel_size, padding=kernel_size // 2, groups=dim)
        self.norm = nn.LayerNorm(dim)
        self.pw1, self.pw2 = nn.Linear(dim, 3 * dim), nn.Linear(3 * dim, dim)
        self.gamma = nn.Parameter(torch.full((dim,), 0.1))  # layer scale

    def forward(self, x):
        h = self.dwconv(x).transpose(1, 2)              # (B, F, C)
        h = self.pw2(F.gelu(self.pw1(self.norm(h))))   # (B, F, C)
        return x + (self.gamma * h).transpose(1, 2)


class ISTFTVocoder(nn.Module):
    """Log-mel (B, n_mels, F) -> waveform (B, F * hop) through a predicted STFT.

    ``__call__`` also takes an unbatched (n_mels, F) and returns (F * hop,).
    """

    def __init__(self, cfg: Mel2WavConfig):
        super().__init__()
        self.cfg = cfg
        self.hop_length, self.sample_rate = cfg.mel.hop_length, cfg.mel.sample_rate
        self.gl_iters = cfg.gl_iters   # phase refinement at inference (0: the predicted phase as is)
        self.embed = nn.Conv1d(cfg.mel.n_mels, cfg.dim, cfg.kernel_size, padding=cfg.kernel_size // 2)
        self.norm_in = nn.LayerNorm(cfg.dim)
        self.blocks = nn.ModuleList(ConvNeXtBlock(cfg.dim, cfg.kernel_size) for _ in range(cfg.n_layers))
        self.norm_out = nn.LayerNorm(cfg.dim)
        self.n_bins = cfg.n_fft // 2 + 1
        self.head = nn.Linear(cfg.dim, 2 * self.n_bins)  # log-magnitude correction and phase per bin
        # the magnitude part starts at zero: the net begins as the analytic inverse below and learns a residual
        nn.init.zeros_(self.head.weight[: self.n_bins])
        nn.init.zeros_(self.head.bias[: self.n_bins])
        self.register_buffer("window", torch.hann_window(cfg.n_fft), persistent=False)
        # pseudo-inverse of the mel filterbank at the iSTFT's resolution: mel power -> linear power
        fb = torchaudio.functional.melscale_fbanks(self.n_bins, cfg.mel.f_min, cfg.mel.f_max or cfg.mel.sample_rate / 2,
                                                   cfg.mel.n_mels, cfg.mel.sample_rate, norm="slaney", mel_scale="slaney")
        self.register_buffer("inverse_fb", torch.linalg.pinv(fb.T), persistent=False)     # (bins, n_mels)

    def analytic_log_mag(self, logmel: torch.Tensor) -> torch.Tensor:
        """Griffin-Lim's magnitude: least-squares inverse mel, (B, n_mels, F) -> (B, bins, F) log|S|."""
        power = (self.inverse_fb @ logmel.float().exp()).clamp(min=1e-10)     # (B, bins, F)
        return 0.5 * power.log()

    def predict_spec(self, logmel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, n_mels, F) log-mel -> log|S| and phase, each (B, n_fft/2+1, F), float32.

        log|S| = the analytic inverse (as Griffin-Lim's) + a learned correction.
        """
        x = self.embed(logmel)                                        # (B, C, F)
        x = self.norm_in(x.transpose(1, 2)).transpose(1, 2)
        for block in self.blocks:
            x = block(x)
        h = self.head(self.norm_out(x.transpose(1, 2))).float()     # (B, F, 2 * bins)
        correction, phase = h.transpose(1, 2).chunk(2, dim=1)       # (B, bins, F) each
        log_mag = correction + (self.analytic_log_mag(logmel) if self.cfg.magnitude_base == "pinv" else 0.0)
        return log_mag.clamp(max=6.0), phase                        # |S| capped at e^6, as in Vocos

    def synthesize(self, log_mag: torch.Tensor, phase: torch.Tensor, gl_iters: int = 0) -> torch.Tensor:
        """S = |S| (cos p + i sin p) -> inverse STFT. (B, bins, F) -> (B, F * hop).

        ``gl_iters`` > 0 refines the predicted phase by that many (fast) Griffin-Lim
        iterations that keep the predicted magnitude: started from the net's phase instead
        of from zero, a few iterations make the frames consistent with each other.
        """
        frames = log_mag.shape[-1]

        def pad(x):                                                  # +1 frame: centred iSTFT -> F * hop
            return torch.cat([x, x[..., -1:]], dim=-1)

        def istft(spec):
            return torch.istft(spec, self.cfg.n_fft, self.hop_length, self.cfg.n_fft, self.window,
                               center=True, length=frames * self.hop_length)

        mag, angles = pad(log_mag.exp()), pad(torch.polar(torch.ones_like(phase), phase))
        previous, alpha = 0.0, self.cfg.gl_momentum / (1 + self.cfg.gl_momentum)
        for _ in range(gl_iters):
            # project onto consistent spectrograms, keep only the phase, with momentum (fast GL)
            rebuilt = torch.stft(istft(mag * angles), self.cfg.n_fft, self.hop_length, self.cfg.n_fft, self.window,
                                 center=True, return_complex=True)
            angles = rebuilt - alpha * previous
            angles = angles / angles.abs().clamp(min=1e-8)
            previous = rebuilt
        return istft(mag * angles)

    def forward(self, logmel: torch.Tensor) -> torch.Tensor:
        if logmel.dim() == 2:
            return self.forward(logmel[None])[0]
        if logmel.shape[-1] == 0:
            return logmel.new_zeros(logmel.shape[0], 0)
        return self.synthesize(*self.predict_spec(logmel), gl_iters=self.gl_iters)


# ----------------------------------------------------------------------------- losses

def stft_loss(y_hat: torch.Tensor, y: torch.Tensor, resolutions) -> torch.Tensor:
    """Multi-resolution STFT loss: spectral convergence + L1 of log magnitudes. y: (B, T)."""
    loss = y.new_zeros(())
    for n_fft, hop in resolutions:
        w = torch.hann_window(n_fft, device=y.device)
        s_hat = torch.stft(y_hat, n_fft, hop, n_fft, w, return_complex=True).abs().clamp(min=1e-5)
        s = torch.stft(y, n_fft, hop, n_fft, w, return_complex=True).abs().clamp(min=1e-5)
        # spectral convergence ||S - S^||_F / ||S||_F  +  mean |log S - log S^|
        loss = loss + (s - s_hat).norm() / s.norm().clamp(min=1e-5) + (s.log() - s_hat.log()).abs().mean()
    return loss / len(resolutions)


def vocoder_loss(model: "ISTFTVocoder", mel: torch.Tensor, y: torch.Tensor, cfg: Mel2WavConfig) -> tuple:
    """Loss of the iSTFT vocoder on reference waves y (B, T) with their log-mels (B, n_mels, F).

    = multi-resolution STFT loss (output wave) + mel_loss_weight * log-mel L1 (output wave)
      + L1 of the predicted log|S| against the reference STFT at the vocoder's own resolution.
    The phase is learned only through the wave-domain losses (no phase target, no GAN).
    """
    with autocast(cfg.bf16):
        log_mag, phase = model.predict_spec(mel)
    y_hat = model.synthesize(log_mag, phase)                       # (B, T), float32
    ref = torch.stft(y, cfg.n_fft, cfg.mel.hop_length, cfg.n_fft, model.window, return_complex=True)[..., :-1]
    ref_mag = ref.abs().clamp(min=1e-5)
    mag_l1 = (log_mag - ref_mag.log()).abs().mean()
    mel_l1 = (mel_frames(y_hat, cfg.mel) - mel).abs().mean()
    total = stft_loss(y_hat, y, cfg.stft_resolutions) + cfg.mel_loss_weight * mel_l1 + mag_l1
    return total, {"mel_l1": mel_l1.item(), "mag_l1": mag_l1.item()}


# ----------------------------------------------------------------------------- training

def _load_clips(corpus, max_clips, seed, sample_rate):
    clips = corpus.utterances("train")
    random.Random(seed).shuffle(clips)
    clips = clips[:max_clips] if max_clips else clips
    # peak-normalised like the flow model's targets (and Step-Audio's pre-processing)
    return [peak_normalize(corpus.load(r, sample_rate)).to(torch.float16)
            for _, r in tqdm(clips, desc="loading clips", leave=False)]


def train_mel2wav(corpus, cfg: Mel2WavConfig, progress: bool = True) -> ISTFTVocoder:
    """Train the iSTFT vocoder on ground-truth (mel, wave) crops of the corpus's train split."""
    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    hop, seg = cfg.mel.hop_length, cfg.segment_frames * cfg.mel.hop_length
    clips = [c for c in _load_clips(corpus, cfg.max_clips, cfg.seed, cfg.mel.sample_rate) if c.numel() >= seg]
    model = ISTFTVocoder(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=(0.8, 0.99), weight_decay=0.01)
    bar = tqdm(range(cfg.steps), desc="mel2wav", disable=not progress)
    t0, losses, mels = time.time(), [], []
    for step in bar:
        batch = []
        for _ in range(cfg.batch_size):
            c = clips[rng.randrange(len(clips))]
            start = rng.randrange(0, (c.numel() - seg) // hop + 1) * hop
            batch.append(c[start:start + seg].float())
        y = torch.stack(batch)                          # (B, seg)
        mel = mel_frames(y, cfg.mel)                    # (B, n_mels, frames)
        for g in opt.param_groups:
            g["lr"] = warmup_cosine(step, cfg.steps, cfg.lr, cfg.warmup, floor=0.1)
        loss, parts = vocoder_loss(model, mel, y, cfg)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
        mels.append(parts["mel_l1"])
        bar.set_postfix(loss=f"{sum(losses[-20:]) / len(losses[-20:]):.3f}", mel_l1=f"{sum(mels[-20:]) / len(mels[-20:]):.3f}")
    model.train_info = {"train_seconds": time.time() - t0, "final_loss": sum(losses[-50:]) / len(losses[-50:]),
                        "final_mel_l1": sum(mels[-50:]) / len(mels[-50:]),
                        "losses": losses, "n_params": sum(p.numel() for p in model.parameters())}
    return model.eval()


def save_mel2wav(model: ISTFTVocoder, folder) -> None:
    """model.safetensors + config.json, each written atomically (config last)."""
    from safetensors.torch import save as save_bytes

    from aqaa_ref.cache import atomic_write_bytes
    atomic_write_bytes(folder / "model.safetensors", save_bytes({k: v.contiguous() for k, v in model.state_dict().items()}))
    info = {k: v for k, v in getattr(model, "train_info", {}).items() if k != "losses"}
    atomic_write_json(folder / "config.json", {"config": asdict(model.cfg), "train_info": info})


def mel2wav_config(c: dict) -> Mel2WavConfig:
    """A Mel2WavConfig from its saved JSON form (``asdict``)."""
    return Mel2WavConfig(**{**c, "mel": MelConfig(**c["mel"]),
                            "stft_resolutions": tuple(tuple(r) for r in c["stft_resolutions"])})


def mel2wav_dir(corpus, cfg: Mel2WavConfig):
    """The cache folder of the mel-to-wave model trained with ``cfg`` on ``corpus``."""
    # the inference-only fields do not change the weights, so they are not part of the key
    return cache_dir() / "mel2wav" / config_hash(replace(cfg, gl_iters=0, gl_momentum=0.0), corpus.config)


def load_mel2wav(folder) -> ISTFTVocoder:
    meta = json.loads((folder / "config.json").read_text())
    model = ISTFTVocoder(mel2wav_config(meta["config"]))
    model.load_state_dict(load_file(str(folder / "model.safetensors")))
    model.train_info = meta.get("train_info", {})
    return model.eval()


def load_or_train_mel2wav(corpus, cfg: Mel2WavConfig, progress: bool = True) -> ISTFTVocoder:
    """Cached under cache_dir()/mel2wav/<hash(cfg, corpus config)>; trained on a miss."""
    folder = mel2wav_dir(corpus, cfg)
    if (folder / "config.json").exists():
        model = load_mel2wav(folder)
    else:
        model = train_mel2wav(corpus, cfg, progress)
        save_mel2wav(model, folder)
    model.gl_iters = cfg.gl_iters
    return model

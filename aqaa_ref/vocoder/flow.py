"""Optimal-transport conditional flow matching (OT-CFM): tokens -> mel, as in CosyVoice.

A flow model moves a sample of noise z ~ N(0, I) to a mel spectrogram x1 along a
velocity field v(x, t | mu), t from 0 to 1, where mu is the mel-shaped condition that
:class:`~aqaa_ref.vocoder.token_encoder.TokenEncoder` makes from the audio tokens.

Training (conditional flow matching with the OT path of Lipman et al.)::

    t ~ U(0, 1), then t <- 1 - cos(t * pi / 2)            cosine time warp: more small t
    x_t = (1 - (1 - sigma_min) t) z + t x1                 a straight line from z to ~x1
    u   = x1 - (1 - sigma_min) z                           its (constant) velocity
    loss = || v(x_t, t | mu) - u ||^2 over real frames     masked MSE
    with probability 0.2 per example, mu <- 0              so one net also learns v(x_t, t | 0)

Sampling: Euler steps along the same warped time grid, from x_0 = z to x_1; classifier-
free guidance pushes the conditional velocity away from the unconditional one::

    v = (1 + w) v(x, t | mu) - w v(x, t | 0)               w = 0.7: v = 1.7 v_cond - 0.7 v_uncond

Mels are normalised per bin (training-set mean and std) before any of this.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn as nn

from aqaa_ref.audio import MelConfig
from aqaa_ref.vocoder.mel2wav import VOCODER_MEL
from aqaa_ref.vocoder.token_encoder import GROUP_SIZE, TokenEncoder
from aqaa_ref.vocoder.unet import UNet1D, UNetConfig
from aqaa_ref import presets

#: Seconds per LLSSS group (2 x 60 ms = 3 x 40 ms)
GROUP_SECONDS = 0.12


# ----------------------------------------------------------------------------- the CFM math

def cosine_warp(t: torch.Tensor) -> torch.Tensor:
    """t <- 1 - cos(t * pi / 2): keeps 0 and 1 fixed, spends more steps near t = 0 (noise)."""
    return 1 - torch.cos(t * 0.5 * math.pi)


def cfm_interpolant(z: torch.Tensor, x1: torch.Tensor, t: torch.Tensor, sigma_min: float = 1e-6) -> torch.Tensor:
    """x_t = (1 - (1 - sigma_min) t) z + t x1. z, x1: (B, C, F); t: (B, 1, 1) or scalar."""
    return (1 - (1 - sigma_min) * t) * z + t * x1


def cfm_target(z: torch.Tensor, x1: torch.Tensor, sigma_min: float = 1e-6) -> torch.Tensor:
    """u = d x_t / dt = x1 - (1 - sigma_min) z (the same for every t). (B, C, F)."""
    return x1 - (1 - sigma_min) * z


def guided_velocity(v_cond: torch.Tensor, v_uncond: torch.Tensor, w: float) -> torch.Tensor:
    """Classifier-free guidance: (1 + w) v_cond - w v_uncond (w = 0: the conditional velocity)."""
    return (1 + w) * v_cond - w * v_uncond


def time_grid(n_steps: int, warp: bool = True) -> torch.Tensor:
    """n_steps + 1 times from 0 to 1, cosine-warped like the training times. (n_steps + 1,)"""
    t = torch.linspace(0, 1, n_steps + 1)
    return cosine_warp(t) if warp else t


def euler_sample(velocity, x0: torch.Tensor, n_steps: int = 10, warp: bool = True,
                 trajectory: list | None = None) -> torch.Tensor:
    """Integrate dx/dt = velocity(x, t) from t = 0 to 1 with Euler steps on :func:`time_grid`.

    velocity: callable (x (B, C, F), t scalar tensor) -> (B, C, F). ``trajectory``, if a list,
    receives x at every grid time (n_steps + 1 tensors). Returns x at t = 1.
    """
    ts = time_grid(n_steps, warp)
    x = x0
    if trajectory is not None:
        trajectory.append(x)
    for k in range(n_steps):
        # x_{k+1} = x_k + (t_{k+1} - t_k) v(x_k, t_k)
        x = x + (ts[k + 1] - ts[k]) * velocity(x, ts[k])
        if trajectory is not None:
            trajectory.append(x)
    return x


# ----------------------------------------------------------------------------- the model

@dataclass(frozen=True)
class VocoderConfig:
    """Token -> mel flow model and its training. Presets: ``tiny`` (tests), ``toy``, ``paper``."""

    #: added after toy models were cached: at these values they stay out of the cache key
    __key_defaults__ = {"extra_speech": 0, "ema_decay": 0.0}

    name: str = "toy"
    mel: MelConfig = VOCODER_MEL
    # token encoder
    enc_dim: int = 160
    enc_layers: int = 2
    enc_heads: int = 4
    # estimator
    unet: UNetConfig = field(default_factory=UNetConfig)
    # flow matching
    sigma_min: float = 1e-6
    cond_drop_prob: float = 0.2
    loss: str = "mse"               # "mse" (Step-Audio / CosyVoice 1) or "l1" (CosyVoice 2)
    prior_loss_weight: float = 1.0  # Matcha-style |mu - x1| term: a choice that speeds up toy training
    # inference defaults
    n_steps: int = 10
    guidance: float = 0.7
    temperature: float = 1.0        # scale of the starting noise (Grad-TTS / Matcha-TTS "temperature")
    # training
    seed: int = 0
    steps: int = 800
    batch_size: int = 16
    max_groups: int = 16            # random crops of up to 16 groups = 1.92 s
    lr: float = 1e-3
    warmup: int = 100
    max_clips: int | None = 3000
    extra_speech: int = 0           # free-speech clips added (aqaa_ref.data.speech_pool): corpus voices, new words
    ema_decay: float = 0.0          # keep an exponential moving average of the weights and save it (0: off)
    bf16: bool = True               # bf16 autocast while training, where this CPU runs it faster (aqaa_ref.precision)

    def __post_init__(self):
        fpg = GROUP_SECONDS * self.mel.sample_rate / self.mel.hop_length
        if abs(fpg - round(fpg)) > 1e-9:
            raise ValueError(f"hop {self.mel.hop_length} at {self.mel.sample_rate} Hz does not divide a 120 ms group")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if self.loss not in ("mse", "l1"):
            raise ValueError(f"loss must be 'mse' or 'l1', got {self.loss!r}")

    @property
    def frames_per_group(self) -> int:
        return round(GROUP_SECONDS * self.mel.sample_rate / self.mel.hop_length)

    @classmethod
    def from_preset(cls, preset: str, **overrides) -> "VocoderConfig":
        kw = presets.preset("vocoder", preset)
        if isinstance(kw.get("unet"), dict):
            kw["unet"] = UNetConfig(**kw["unet"])
        return cls(**{"name": preset, **kw, **overrides})


def frame_noise(seed: int, start_group: int, n_groups: int, n_mels: int, frames_per_group: int) -> torch.Tensor:
    """Noise z (n_mels, n_groups * frames_per_group) that depends on the *absolute* group index.

    Group g always gets the same noise for a given seed, so a streaming window that starts
    anywhere sees the noise the offline decode saw at the same frames.
    """
    parts = []
    for g in range(start_group, start_group + n_groups):
        gen = torch.Generator().manual_seed(seed * 1_000_003 + g)
        parts.append(torch.randn(n_mels, frames_per_group, generator=gen))
    return torch.cat(parts, dim=1) if parts else torch.zeros(n_mels, 0)


class FlowVocoder(nn.Module):
    """Vocoder codes (B, 5G) -> log-mel (B, n_mels, frames_per_group * G) by OT-CFM."""

    def __init__(self, cfg: VocoderConfig, n_linguistic: int, n_semantic: int):
        super().__init__()
        self.cfg, self.n_linguistic, self.n_semantic = cfg, n_linguistic, n_semantic
        n_mels = cfg.mel.n_mels
        self.encoder = TokenEncoder(n_linguistic + n_semantic, n_mels, cfg.enc_dim, cfg.enc_layers, cfg.enc_heads,
                                    cfg.frames_per_group)
        self.estimator = UNet1D(cfg.unet)
        # per-bin log-mel statistics of the training set (set before training)
        self.register_buffer("mel_mean", torch.zeros(n_mels, 1))
        self.register_buffer("mel_std", torch.ones(n_mels, 1))

    def normalize(self, logmel):    # (..., n_mels, F)
        return (logmel - self.mel_mean) / self.mel_std

    def denormalize(self, x):
        return x * self.mel_std + self.mel_mean

    def frame_mask(self, n_groups: list[int]) -> torch.Tensor:
        """(B, 1, frames_per_group * G_max) float mask of real frames."""
        fpg = self.cfg.frames_per_group
        frames = torch.arange(fpg * max(n_groups, default=0))
        return (frames[None, :] < torch.tensor(n_groups)[:, None] * fpg).float()[:, None, :]

    def loss(self, codes: torch.Tensor, logmel: torch.Tensor, n_groups: list[int],
             generator: torch.Generator | None = None) -> tuple[torch.Tensor, dict]:
        """The OT-CFM training loss (plus the optional prior term).

        codes: (B, 5G) long; logmel: (B, n_mels, 12G) ground truth; n_groups: valid groups per item.
        Returns (loss, {"cfm": ..., "prior": ...}).
        """
        cfg = self.cfg
        mask = self.frame_mask(n_groups)                                 # (B, 1, F)
        x1 = self.normalize(logmel) * mask                               # target mel, normalised
        mu = self.encoder(codes, n_groups)                               # (B, n_mels, F)
        B = x1.shape[0]
        # t ~ U(0, 1), cosine-warped; one t per example
        t = cosine_warp(torch.rand(B, 1, 1, generator=generator))
        z = torch.randn(x1.shape, generator=generator)
        x_t = cfm_interpolant(z, x1, t, cfg.sigma_min)
        u = cfm_target(z, x1, cfg.sigma_min)
        # drop the condition with probability cond_drop_prob (the unconditional model for CFG)
        keep = (torch.rand(B, 1, 1, generator=generator) >= cfg.cond_drop_prob).float()
        v = self.estimator(x_t, mu * keep, t.view(B), mask)
        err = (v - u).abs() if cfg.loss == "l1" else (v - u) ** 2
        n = mask.sum() * x1.shape[1]
        cfm = (err * mask).sum() / n
        prior = ((mu - x1).abs() * mask).sum() / n
        return cfm + cfg.prior_loss_weight * prior, {"cfm": cfm.item(), "prior": prior.item()}

    @torch.no_grad()
    def sample(self, codes: torch.Tensor, n_steps: int | None = None, guidance: float | None = None,
               noise: torch.Tensor | None = None, seed: int = 0, trajectory: list | None = None,
               temperature: float | None = None) -> torch.Tensor:
        """Generate the log-mel of one code stream.

        codes: (5G,) long (validated by the caller); noise: (n_mels, 12G) or None for
        :func:`frame_noise` from ``seed``. Returns (n_mels, 12G) natural-log mel.
        ``trajectory`` collects the normalised x at every step (for plots).
        """
        cfg = self.cfg
        n_steps = cfg.n_steps if n_steps is None else n_steps
        w = cfg.guidance if guidance is None else guidance
        G = codes.numel() // GROUP_SIZE
        if G == 0:
            return torch.zeros(cfg.mel.n_mels, 0)
        z = noise if noise is not None else frame_noise(seed, 0, G, cfg.mel.n_mels, cfg.frames_per_group)
        z = z * (cfg.temperature if temperature is None else temperature)
        mask = self.frame_mask([G])                                       # (1, 1, F)
        mu = self.encoder(codes[None], [G])                               # (1, n_mels, F)

        def velocity(x, t):
            if w == 0:
                return self.estimator(x, mu, t.expand(1), mask)
            # conditional and unconditional in one batch of 2
            v = self.estimator(x.expand(2, -1, -1), torch.cat([mu, torch.zeros_like(mu)]), t.expand(2),
                               mask.expand(2, -1, -1))
            return guided_velocity(v[:1], v[1:], w)

        x = euler_sample(velocity, z[None], n_steps, trajectory=trajectory)
        return self.denormalize(x[0])

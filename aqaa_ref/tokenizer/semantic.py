"""The semantic tokenizer: 25 Hz tokens from a VQ bottleneck that keeps acoustic detail.

Step-Audio's semantic stream is CosyVoice v1's supervised semantic tokenizer: an
ASR-trained encoder with a vector-quantization bottleneck, 4,096 codes at 25 Hz (facts
§1). Its job here: carry what the linguistic stream drops (pitch, timbre, speaking
rate) so that the vocoder, which sees only tokens, can put them back. Ours::

    wav (T,) 16 kHz -> causal log-mel (T//160, 80) -> stack 4 frames (40 ms)  (T//640, 320)
      -> Linear + causal ConvNeXt-1D encoder -> Linear to code_dim            z: (T//640, D)
      -> nearest codebook entry (EMA VQ)                                       codes: (T//640,)
    training only, from the quantized vectors:
      -> centred ConvNeXt-1D decoder -> 3 heads:
           mel:  the 4 log-mel frames of each token        (L1)       acoustic detail, timbre
           F0:   log-F0 and voicing of each token          (L1, BCE)  pitch, explicitly
           CTC:  phonemes at 2 slots per token (20 ms)     (CTC)      content, as CosyVoice's
                                                                      supervised tokenizer

Codebook: an EMA (k-means-like) codebook, as in VQ-VAE-2 / SoundStream, rather than a
codebook learned by gradient. Each entry is the running mean of the encoder vectors
assigned to it; the encoder is pulled towards its code by the commitment loss
``beta |z - sg(q)|^2`` and gets gradients through the straight-through estimator. Why:
EMA updates do not depend on the learning rate or on a codebook loss weight, and they
converge in a few hundred steps, which is all the toy budget allows. Dead codes (EMA
count below ``dead_threshold``) are re-seeded every ``reseed_every`` steps from encoder
vectors of the current batch, so the codebook stays in use. Health (codes used,
perplexity) is logged every step.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from aqaa_ref.lr_schedule import warmup_cosine
from aqaa_ref.threads import torch_threads
from aqaa_ref.tokenizer.ctc import PhonemeInventory
from aqaa_ref.tokenizer.features import (TokenStreamConfig, MEL, Clip, causal_log_mel, length_batches, load_clips,
                                         mel_stats, pad_clip_batch, stack_frames)
from aqaa_ref.tokenizer.kmeans import assign, usage_stats
from aqaa_ref.tokenizer.layers import ConvStack, count_params
from aqaa_ref.precision import autocast


@dataclass(frozen=True)
class SemanticConfig(TokenStreamConfig):
    """Model, codebook and training settings. Presets: :meth:`from_preset` ("tiny", "toy", "paper")."""

    component = "semantic"

    dim: int = 128
    n_layers: int = 4              # encoder blocks (causal)
    dec_layers: int = 2            # decoder blocks (centred; training only)
    kernel: int = 5
    expand: int = 2
    frames_per_token: int = 4      # 4 x 10 ms = 40 ms = 25 Hz
    lookahead: int = 1             # tokens of future audio each token may see
    codebook_size: int = 512       # 4,096 in the paper
    code_dim: int = 32
    ema_decay: float = 0.99
    commitment: float = 0.25
    dead_threshold: float = 0.5    # EMA count (per step) below which a code is re-seeded
    reseed_every: int = 20
    mel_weight: float = 1.0
    f0_weight: float = 1.0
    ctc_weight: float = 0.3
    # training
    steps: int = 350
    batch_frames: int = 16_000
    lr: float = 3e-3
    weight_decay: float = 0.01
    dropout: float = 0.05
    bf16: bool = True               # bf16 autocast while training, where this CPU runs it faster (aqaa_ref.precision)
    threads: int = 1
    seed: int = 0



class EMAQuantizer(nn.Module):
    """Nearest-neighbour VQ with an EMA codebook and dead-code re-seeding. z: (N, D) -> codes (N,)."""

    def __init__(self, k: int, d: int, decay: float):
        super().__init__()
        self.decay = decay
        self.register_buffer("codebook", torch.zeros(k, d))
        self.register_buffer("ema_count", torch.ones(k))
        self.register_buffer("ema_sum", torch.zeros(k, d))
        self.register_buffer("initialised", torch.tensor(False))

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z: (N, D) float -> (straight-through quantized (N, D), codes (N,)). Updates the EMA in training."""
        if self.training and not bool(self.initialised):
            self.reseed(torch.ones(self.codebook.shape[0], dtype=torch.bool), z)
            self.initialised.fill_(True)
        codes = assign(z.detach(), self.codebook)
        if self.training:
            with torch.no_grad():
                onehot_counts = torch.bincount(codes, minlength=self.codebook.shape[0]).float()
                sums = torch.zeros_like(self.ema_sum).index_add_(0, codes, z.detach().float())
                self.ema_count.mul_(self.decay).add_(onehot_counts, alpha=1 - self.decay)
                self.ema_sum.mul_(self.decay).add_(sums, alpha=1 - self.decay)
                self.codebook.copy_(self.ema_sum / self.ema_count.clamp(min=1e-5)[:, None])
        q = self.codebook[codes]
        return z + (q - z).detach(), codes

    @torch.no_grad()
    def reseed(self, which: torch.Tensor, z: torch.Tensor) -> int:
        """Replace the codes in mask ``which`` (K,) with random rows of z (N, D). -> how many."""
        n = int(which.sum())
        if n == 0 or z.shape[0] == 0:
            return 0
        rows = z.detach().float()[torch.randint(z.shape[0], (n,))]
        self.codebook[which] = rows
        self.ema_sum[which] = rows
        self.ema_count[which] = 1.0
        return n


class SemanticTokenizer(nn.Module):
    """Causal encoder + EMA VQ (the tokenizer) and a decoder with three heads (for training)."""

    def __init__(self, cfg: SemanticConfig, inventory: PhonemeInventory):
        super().__init__()
        self.cfg, self.inventory = cfg, inventory
        n_mels, fpt = MEL.n_mels, cfg.frames_per_token
        self.register_buffer("mel_mean", torch.zeros(n_mels))
        self.register_buffer("mel_std", torch.ones(n_mels))
        self.register_buffer("logf0_mean_std", torch.tensor([5.0, 0.5]))
        self.proj = nn.Linear(fpt * n_mels, cfg.dim)
        self.encoder = ConvStack(cfg.dim, cfg.n_layers, cfg.kernel, cfg.expand, causal=True, dropout=cfg.dropout)
        self.to_code = nn.Linear(cfg.dim, cfg.code_dim)
        self.vq = EMAQuantizer(cfg.codebook_size, cfg.code_dim, cfg.ema_decay)
        self.from_code = nn.Linear(cfg.code_dim, cfg.dim)
        self.decoder = ConvStack(cfg.dim, cfg.dec_layers, cfg.kernel, cfg.expand, causal=False, dropout=cfg.dropout)
        self.mel_head = nn.Linear(cfg.dim, fpt * n_mels)
        self.f0_head = nn.Linear(cfg.dim, 2)  # normalised log-F0, voicing logit
        self.ctc_head = nn.Linear(cfg.dim, 2 * len(inventory))

    @property
    def lookahead_samples(self) -> int:
        return self.cfg.lookahead * self.cfg.hop_samples

    @property
    def context_samples(self) -> int:
        return (self.encoder.receptive_field - 1) * self.cfg.hop_samples + MEL.n_fft

    def embed(self, mel: torch.Tensor, n_tokens: int | None = None) -> torch.Tensor:
        """Pre-quantization vectors. mel: (B, F, 80) including lookahead frames -> (B, N, code_dim)."""
        x = stack_frames((mel - self.mel_mean) / self.mel_std, self.cfg.frames_per_token)
        z = self.to_code(self.encoder(self.proj(x)))[:, self.cfg.lookahead:]
        return z if n_tokens is None else z[:, :n_tokens]

    @torch.no_grad()
    def codes_from_mel(self, mel: torch.Tensor, n_tokens: int | None = None) -> torch.Tensor:
        """mel: (B, F, 80) -> (B, N) semantic codes in [0, codebook_size)."""
        z = self.embed(mel, n_tokens).float()
        B, N, D = z.shape
        return assign(z.reshape(B * N, D), self.vq.codebook).view(B, N)

    @torch.no_grad()
    def encode(self, wav: torch.Tensor) -> torch.Tensor:
        """wav: (T,) or (B, T) 16 kHz, peak-normalised -> (N,) or (B, N), N = T // 640."""
        squeeze = wav.dim() == 1
        wav = wav[None] if squeeze else wav
        n = wav.shape[-1] // self.cfg.hop_samples
        codes = self.codes_from_mel(causal_log_mel(F.pad(wav, (0, self.lookahead_samples))), n)
        return codes[0] if squeeze else codes

    def decode(self, q: torch.Tensor) -> dict:
        """Quantized vectors (B, N, code_dim) -> dict of head outputs: mel (B, 4N, 80)
        normalised, f0 (B, N) normalised log-F0, voiced (B, N) logits, ctc (B, 2N, C) log-probs."""
        h = self.decoder(self.from_code(q))
        B, N, _ = h.shape
        f0 = self.f0_head(h).float()
        return dict(mel=self.mel_head(h).float().view(B, N * self.cfg.frames_per_token, -1),
                    f0=f0[..., 0], voiced=f0[..., 1],
                    ctc=F.log_softmax(self.ctc_head(h).float().view(B, 2 * N, -1), dim=-1))

    @torch.no_grad()
    def decode_mel(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes (B, N) -> reconstructed log-mel (B, 4N, 80) (the training decoder; a demo, not the vocoder)."""
        out = self.decode(self.vq.codebook[codes])
        return out["mel"] * self.mel_std + self.mel_mean


# ----------------------------------------------------------------------------- training

def token_f0(clip: Clip, frames_per_token: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token F0 target: (mean log-F0 over voiced frames (N,), voiced flag (N,) = half or more voiced)."""
    n = clip.mel.shape[0] // frames_per_token
    f0 = clip.f0[: n * frames_per_token].view(n, frames_per_token)
    voiced = f0 > 0
    logf0 = torch.where(voiced, f0.clamp(min=1).log(), torch.zeros_like(f0)).sum(1) / voiced.sum(1).clamp(min=1)
    return logf0, voiced.float().mean(1) >= 0.5


def train_semantic(data, cfg: SemanticConfig = SemanticConfig(), progress: bool = True, log: list | None = None,
                   inventory: PhonemeInventory | None = None) -> SemanticTokenizer:
    """Train encoder, EMA codebook and decoder on mel + F0 + phoneme losses. One call.

    Args:
        data: a :class:`aqaa_ref.data.Corpus` (its train split) or a list of loaded Clips.
        log: if given, receives one dict per step (losses, ``used``, ``perplexity``, ``reseeded``).
        inventory: the phoneme alphabet (default: built from the clips).
    """
    clips = data if isinstance(data, list) else load_clips(data, "train", progress=progress)
    with torch_threads(cfg.threads):
        return _train(clips, cfg, progress, log, inventory or PhonemeInventory.from_sequences(c.phonemes for c in clips))


def _train(clips, cfg: SemanticConfig, progress, log, inventory) -> SemanticTokenizer:
    torch.manual_seed(cfg.seed)
    g = torch.Generator().manual_seed(cfg.seed)
    fpt = cfg.frames_per_token
    targets = [torch.tensor(inventory.encode(c.phonemes)) for c in clips]
    f0s = [token_f0(c, fpt) for c in clips]
    model = SemanticTokenizer(cfg, inventory)
    model.mel_mean, model.mel_std = mel_stats(clips)
    voiced_logf0 = torch.cat([lf[v] for lf, v in f0s])
    model.logf0_mean_std = torch.stack([voiced_logf0.mean(), voiced_logf0.std().clamp(min=1e-3)])
    opt = torch.optim.AdamW([p for p in model.parameters()], lr=cfg.lr, weight_decay=cfg.weight_decay)
    lengths = [c.mel.shape[0] for c in clips]
    batches: list = []
    model.train()
    t0 = time.time()
    bar = tqdm(range(cfg.steps), desc="semantic VQ", unit="step", disable=not progress)
    for step in bar:
        if not batches:
            batches = length_batches(lengths, cfg.batch_frames, g)
        idx = batches.pop()
        mel, n_tok = pad_clip_batch([clips[i] for i in idx], cfg.lookahead * fpt, fpt)
        N = int(n_tok.max())
        mask = torch.arange(N)[None, :] < n_tok[:, None]  # (B, N) real tokens
        for group in opt.param_groups:
            group["lr"] = warmup_cosine(step, cfg.steps, cfg.lr, warmup=max(1, cfg.steps // 20), floor=0.05)
        with autocast(cfg.bf16):
            z = model.embed(mel, N).float()  # (B, N, D)
        q, codes = model.vq(z[mask])  # only real tokens update the codebook
        commit = F.mse_loss(z[mask], q.detach())
        qfull = torch.zeros_like(z)
        qfull[mask] = q
        with autocast(cfg.bf16):
            out = model.decode(qfull)
        # mel reconstruction (normalised log-mel, L1 on real frames)
        target = (mel[:, : N * fpt] - model.mel_mean) / model.mel_std
        fmask = mask.repeat_interleave(fpt, dim=1)
        mel_loss = (out["mel"] - target).abs().mean(-1)[fmask].mean()
        # F0: voicing everywhere, log-F0 where voiced
        lf = torch.zeros(mask.shape)
        vo = torch.zeros(mask.shape, dtype=torch.bool)
        for j, i in enumerate(idx):
            lf[j, : n_tok[j]], vo[j, : n_tok[j]] = f0s[i]
        m_, s_ = model.logf0_mean_std
        voiced_loss = F.binary_cross_entropy_with_logits(out["voiced"][mask], vo[mask].float())
        f0_loss = (out["f0"] - (lf - m_) / s_).abs()[vo & mask].mean() + voiced_loss
        tg = [targets[i] for i in idx]
        ctc = F.ctc_loss(out["ctc"].transpose(0, 1), torch.cat(tg), n_tok * 2, torch.tensor([len(t) for t in tg]),
                         blank=0, zero_infinity=True)
        loss = cfg.mel_weight * mel_loss + cfg.f0_weight * f0_loss + cfg.ctc_weight * ctc + cfg.commitment * commit
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        reseeded = 0
        if (step + 1) % cfg.reseed_every == 0 and step < cfg.steps * 0.8:  # let the codebook settle at the end
            reseeded = model.vq.reseed(model.vq.ema_count < cfg.dead_threshold, z[mask])
        health = usage_stats(codes, cfg.codebook_size)
        bar.set_postfix(mel=f"{mel_loss.item():.3f}", ppl=f"{health['perplexity']:.0f}")
        if log is not None:
            log.append(dict(step=step, loss=loss.item(), mel=mel_loss.item(), f0=f0_loss.item(), ctc=ctc.item(),
                            commit=commit.item(), used=health["used"], perplexity=health["perplexity"],
                            reseeded=reseeded, seconds=time.time() - t0))
    model.eval()
    return model


def describe(model: SemanticTokenizer) -> str:
    c = model.cfg
    return (f"SemanticTokenizer: {c.rate_hz:.0f} Hz, d={c.dim}, {c.n_layers} causal encoder blocks "
            f"(+{c.dec_layers} decoder blocks for training), lookahead {c.lookahead * c.hop_samples / 16:.0f} ms, "
            f"K={c.codebook_size} x {c.code_dim}, {count_params(model) / 1e6:.2f}M params")


__all__ = ["SemanticConfig", "SemanticTokenizer", "EMAQuantizer", "train_semantic", "describe"]

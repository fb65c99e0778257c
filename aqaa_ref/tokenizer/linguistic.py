"""The linguistic tokenizer: 16.67 Hz tokens = k-means codes of a CTC phoneme encoder.

Step-Audio's linguistic stream is the output of a streaming Paraformer ASR encoder,
quantized by the nearest of 1,024 k-means centroids (facts §1). Ours, at toy scale::

    wav (T,) 16 kHz
      -> causal log-mel (T//160, 80)                       10 ms frames, features.py
      -> stack 6 frames (Paraformer's low frame rate)      (T//960, 480): one vector per 60 ms
      -> Linear + causal ConvNeXt-1D stack                  (T//960, d)  h: "the encoder output"
      -> argmin_k |h_t - c_k|^2 over K stored centroids     (T//960,)    linguistic codes

Training has two steps. (1) The encoder learns phonemes with CTC. Phonemes can come
faster than one per 60 ms (fast English is ~15-18 phonemes/s), which a 16.67 Hz CTC
cannot emit, so the CTC head reads each 60 ms vector as ``ctc_slots`` = 3 slots of
20 ms: ``Linear(d, 3 * C)`` reshaped to 3 frames. The encoder itself stays at 60 ms, so
``h`` must hold everything said in its 60 ms. (2) k-means (k-means++, Lloyd) on ``h`` over
the training set gives the centroids. The CTC head is kept for the phoneme error rate.

Lookahead: token t is read from encoder step ``t + lookahead``, so it sees
``lookahead`` x 60 ms of audio past its own end (callers append that much silence at the
end of a clip). Everything else is causal, which makes 240 ms streaming exact (dual.py).
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from aqaa_ref.lr_schedule import warmup_cosine
from aqaa_ref.threads import torch_threads
from aqaa_ref.tokenizer.ctc import PhonemeInventory, greedy_decode
from aqaa_ref.tokenizer.features import (TokenStreamConfig, MEL, Clip, causal_log_mel, length_batches, load_clips,
                                         mel_stats, pad_clip_batch, stack_frames)
from aqaa_ref.tokenizer.kmeans import assign, fit_kmeans
from aqaa_ref.tokenizer.layers import ConvStack, count_params
from aqaa_ref.precision import autocast


@dataclass(frozen=True)
class LinguisticConfig(TokenStreamConfig):
    """Model, codebook and training settings. Presets: :meth:`from_preset` ("tiny", "toy", "paper")."""

    component = "linguistic"

    dim: int = 160
    n_layers: int = 6
    kernel: int = 5
    expand: int = 2
    frames_per_token: int = 6      # 6 x 10 ms = 60 ms = 16.67 Hz
    lookahead: int = 1             # tokens of future audio each token may see
    ctc_slots: int = 3             # CTC sub-frames per token (20 ms each)
    codebook_size: int = 256       # k-means K (1,024 in the paper; 256 in toy: see notebook 01, section 7)
    # training
    steps: int = 350
    batch_frames: int = 16_000     # padded mel frames per batch (160 s of audio)
    lr: float = 3e-3
    weight_decay: float = 0.01
    dropout: float = 0.1
    warp: float = 0.1              # vocal-tract-length-style mel warp, factor in [1 - warp, 1 + warp]
    freq_mask: int = 8             # SpecAugment: zero up to this many mel bins (normalised space)
    stretch: float = 0.15          # time stretch of each batch by a factor in [1 - stretch, 1 + stretch]
    kmeans_iters: int = 10
    kmeans_points: int = 200_000   # encoder vectors sampled to fit k-means
    bf16: bool = True              # bf16 autocast while training where faster (aqaa_ref.precision); encoding in fp32
    threads: int = 1               # torch threads while training (see features.torch_threads)
    seed: int = 0



class LinguisticTokenizer(nn.Module):
    """Encoder + CTC head + k-means centroids. Call :meth:`codes_from_mel` or :meth:`encode`."""

    def __init__(self, cfg: LinguisticConfig, inventory: PhonemeInventory):
        super().__init__()
        self.cfg, self.inventory = cfg, inventory
        n_mels = MEL.n_mels
        self.register_buffer("mel_mean", torch.zeros(n_mels))
        self.register_buffer("mel_std", torch.ones(n_mels))
        self.proj = nn.Linear(cfg.frames_per_token * n_mels, cfg.dim)
        self.encoder = ConvStack(cfg.dim, cfg.n_layers, cfg.kernel, cfg.expand, causal=True, dropout=cfg.dropout)
        self.ctc_head = nn.Linear(cfg.dim, cfg.ctc_slots * len(inventory))
        self.register_buffer("centroids", torch.zeros(cfg.codebook_size, cfg.dim))

    @property
    def lookahead_samples(self) -> int:
        """Silence to append after a clip so its last token sees its full lookahead."""
        return self.cfg.lookahead * self.cfg.hop_samples

    @property
    def context_samples(self) -> int:
        """How far back (samples) a token's receptive field reaches from its own start."""
        return (self.encoder.receptive_field - 1) * self.cfg.hop_samples + MEL.n_fft

    def hidden(self, mel: torch.Tensor, n_tokens: int | None = None) -> torch.Tensor:
        """Encoder output per token. mel: (B, F, 80) causal log-mel including the lookahead
        frames -> (B, N, d), N = n_tokens or F // 6 - lookahead."""
        x = (mel - self.mel_mean) / self.mel_std
        x = stack_frames(x, self.cfg.frames_per_token)  # (B, F//6, 480)
        h = self.encoder(self.proj(x))  # (B, F//6, d)
        h = h[:, self.cfg.lookahead:]  # token t <- step t + lookahead
        return h if n_tokens is None else h[:, :n_tokens]

    def ctc_log_probs(self, h: torch.Tensor) -> torch.Tensor:
        """(B, N, d) -> (B, N * ctc_slots, C) log-probabilities (20 ms slots)."""
        B, N, _ = h.shape
        return F.log_softmax(self.ctc_head(h).float().view(B, N * self.cfg.ctc_slots, -1), dim=-1)

    @torch.no_grad()
    def codes_from_mel(self, mel: torch.Tensor, n_tokens: int | None = None) -> torch.Tensor:
        """mel: (B, F, 80) -> (B, N) linguistic codes in [0, codebook_size)."""
        h = self.hidden(mel, n_tokens)
        B, N, d = h.shape
        return assign(h.reshape(B * N, d), self.centroids).view(B, N)

    @torch.no_grad()
    def encode(self, wav: torch.Tensor) -> torch.Tensor:
        """wav: (T,) or (B, T) 16 kHz, already peak-normalised -> (N,) or (B, N), N = T // 960."""
        squeeze = wav.dim() == 1
        wav = wav[None] if squeeze else wav
        n = wav.shape[-1] // self.cfg.hop_samples
        mel = causal_log_mel(F.pad(wav, (0, self.lookahead_samples)))
        codes = self.codes_from_mel(mel, n)
        return codes[0] if squeeze else codes

    def with_codebook(self, centroids: torch.Tensor) -> "LinguisticTokenizer":
        """A copy sharing this encoder but quantizing with other centroids (K', d) (e.g. another K)."""
        other = LinguisticTokenizer(dataclasses.replace(self.cfg, codebook_size=centroids.shape[0]), self.inventory)
        state = {k: v for k, v in self.state_dict().items() if k != "centroids"}
        other.load_state_dict({**state, "centroids": centroids.float()})
        return other.eval()

    @torch.no_grad()
    def transcribe(self, wav: torch.Tensor) -> list[str]:
        """Greedy CTC phonemes of one clip. wav: (T,) 16 kHz, peak-normalised."""
        mel = causal_log_mel(F.pad(wav, (0, self.lookahead_samples)))[None]
        return self.inventory.decode(greedy_decode(self.ctc_log_probs(self.hidden(mel))[0]))

    @torch.no_grad()
    def read_codes(self, codes) -> list[str]:
        """What a sequence of linguistic codes says: greedy CTC phonemes of the CTC head applied
        to each code's centroid (the quantized vector in place of the encoder's). codes: (N,)."""
        codes = torch.as_tensor(codes, dtype=torch.long).reshape(-1)
        if codes.numel() == 0:
            return []
        if int(codes.min()) < 0 or int(codes.max()) >= self.cfg.codebook_size:
            raise ValueError(f"linguistic codes must lie in [0, {self.cfg.codebook_size}), "
                             f"got {int(codes.min())}..{int(codes.max())}")
        return self.inventory.decode(greedy_decode(self.ctc_log_probs(self.centroids[codes][None])[0]))


# ----------------------------------------------------------------------------- training

def augment_mel(mel: torch.Tensor, warp: float, freq_mask: int, g: torch.Generator) -> torch.Tensor:
    """Per-clip random frequency warp (a vocal-tract-length proxy) and one frequency mask.

    mel: (B, F, M) normalised log-mel -> same shape. Warp: bin m reads bin m * alpha
    (linear interpolation), alpha ~ U[1 - warp, 1 + warp].
    """
    B, _, M = mel.shape
    out = mel
    if warp > 0:
        alpha = 1 + (torch.rand(B, generator=g) * 2 - 1) * warp  # (B,)
        src = (torch.arange(M)[None, :] * alpha[:, None]).clamp(max=M - 1)  # (B, M)
        lo = src.floor().long()
        hi = (lo + 1).clamp(max=M - 1)
        w = (src - lo)[:, None, :]
        out = torch.gather(out, 2, lo[:, None, :].expand_as(out)) * (1 - w) + \
            torch.gather(out, 2, hi[:, None, :].expand_as(out)) * w
    if freq_mask > 0:
        width = torch.randint(0, freq_mask + 1, (B,), generator=g)
        start = (torch.rand(B, generator=g) * (M - width)).long()
        bins = torch.arange(M)[None, :]
        mask = (bins >= start[:, None]) & (bins < (start + width)[:, None])  # (B, M)
        out = out.masked_fill(mask[:, None, :], 0.0)
    return out


def train_linguistic(data, cfg: LinguisticConfig = LinguisticConfig(), progress: bool = True,
                     log: list | None = None) -> LinguisticTokenizer:
    """Train the CTC encoder, then fit the k-means codebook. One call.

    Args:
        data: a :class:`aqaa_ref.data.Corpus` (its train split is used) or a list of
            :class:`~aqaa_ref.tokenizer.features.Clip` already loaded.
        log: if given, receives one dict per step (``step``, ``loss``, ``lr``, ``seconds``).
    Returns:
        the trained :class:`LinguisticTokenizer`, in eval mode.
    """
    clips = data if isinstance(data, list) else load_clips(data, "train", progress=progress)
    with torch_threads(cfg.threads):
        return _train(clips, cfg, progress, log)


def _train(clips: list[Clip], cfg: LinguisticConfig, progress: bool, log: list | None) -> LinguisticTokenizer:
    torch.manual_seed(cfg.seed)
    g = torch.Generator().manual_seed(cfg.seed)
    inventory = PhonemeInventory.from_sequences(c.phonemes for c in clips)
    targets = [torch.tensor(inventory.encode(c.phonemes)) for c in clips]
    model = LinguisticTokenizer(cfg, inventory)
    model.mel_mean, model.mel_std = mel_stats(clips)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    la_frames = cfg.lookahead * cfg.frames_per_token
    lengths = [c.mel.shape[0] for c in clips]
    batches: list = []
    model.train()
    t0 = time.time()
    bar = tqdm(range(cfg.steps), desc="linguistic CTC", unit="step", disable=not progress)
    for step in bar:
        if not batches:
            batches = length_batches(lengths, cfg.batch_frames, g)
        idx = batches.pop()
        mel, n_tok = pad_clip_batch([clips[i] for i in idx], la_frames, cfg.frames_per_token)
        x = augment_mel((mel - model.mel_mean) / model.mel_std, cfg.warp, cfg.freq_mask, g)
        if cfg.stretch > 0:  # speaking-rate perturbation: resample the frame axis
            alpha = 1 + (float(torch.rand(1, generator=g)) * 2 - 1) * cfg.stretch
            x = F.interpolate(x.transpose(1, 2), scale_factor=alpha, mode="linear").transpose(1, 2)
            n_tok = (n_tok * alpha).floor().long()
            n_tok = n_tok.clamp(max=x.shape[1] // cfg.frames_per_token - cfg.lookahead)
        mel = x * model.mel_std + model.mel_mean  # hidden() normalises again
        for group in opt.param_groups:
            group["lr"] = warmup_cosine(step, cfg.steps, cfg.lr, warmup=max(1, cfg.steps // 20), floor=0.05)
        with autocast(cfg.bf16):
            h = model.hidden(mel)
        lp = model.ctc_log_probs(h.float())  # (B, S, C)
        tg = [targets[i] for i in idx]
        loss = F.ctc_loss(lp.transpose(0, 1), torch.cat(tg), n_tok * cfg.ctc_slots,
                          torch.tensor([len(t) for t in tg]), blank=0, zero_infinity=True)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        bar.set_postfix(loss=f"{loss.item():.3f}")
        if log is not None:
            log.append(dict(step=step, loss=loss.item(), lr=opt.param_groups[0]["lr"], seconds=time.time() - t0))
    model.eval()
    feats = encoder_outputs(model, clips)
    sub = feats[torch.randperm(feats.shape[0], generator=g)[: cfg.kmeans_points]]
    kbar = tqdm(total=cfg.kmeans_iters, desc="linguistic k-means", disable=not progress)
    model.centroids.copy_(fit_kmeans(sub, cfg.codebook_size, cfg.kmeans_iters, seed=cfg.seed, progress=kbar))
    kbar.close()
    return model


@torch.no_grad()
def encoder_outputs(model: LinguisticTokenizer, clips: list[Clip], batch_frames: int = 40_000) -> torch.Tensor:
    """Encoder vectors of every token of every clip, concatenated: (sum N_i, d)."""
    out = []
    la_frames = model.cfg.lookahead * model.cfg.frames_per_token
    for b in sorted(length_batches([c.mel.shape[0] for c in clips], batch_frames, torch.Generator().manual_seed(0))):
        batch = [clips[i] for i in b]
        mel, n_tok = pad_clip_batch(batch, la_frames, model.cfg.frames_per_token)
        h = model.hidden(mel)
        out += [h[j, : n_tok[j]] for j in range(len(batch))]
    return torch.cat(out)


def describe(model: LinguisticTokenizer) -> str:
    c = model.cfg
    return (f"LinguisticTokenizer: {c.rate_hz:.2f} Hz, d={c.dim}, {c.n_layers} causal blocks, "
            f"lookahead {c.lookahead * c.hop_samples / 16:.0f} ms, {len(model.inventory)} CTC classes, "
            f"K={c.codebook_size}, {count_params(model) / 1e6:.2f}M params")


__all__ = ["LinguisticConfig", "LinguisticTokenizer", "train_linguistic", "encoder_outputs", "describe"]

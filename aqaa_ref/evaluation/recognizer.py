"""An independent phoneme recognizer (CTC): the judge of generated speech.

Intelligibility of vocoded or generated answers is measured as the phoneme error rate
(PER) of a recognizer that never saw them: it is trained only on the data engine's
ground-truth speech, has its own weights and a different architecture from the
linguistic tokenizer's encoder (a causal ConvNeXt stack), so the judge is not the model
being judged::

    wav (T,) 16 kHz -> log-mel (80, F) at 10 ms, per-utterance mean removed per bin
      -> Conv1d k3 -> GELU -> Conv1d k3 stride 2 -> GELU      (B, D, F/2)   20 ms frames
      -> depthwise conv position -> n bidirectional Transformer blocks
      -> Linear -> log-softmax over (blank, <unk>, phonemes)  (B, F/2, V)
      -> greedy CTC: best path, repeats merged, blanks dropped

Targets are eSpeak IPA tokens from :func:`aqaa_ref.data.phoneme_tokens` (stress dropped,
tones kept), over all four languages.

    >>> rec = load_or_train_recognizer(corpus, RecognizerConfig.from_preset("toy"))
    >>> hyp = rec.transcribe(wav, 16_000)              # ["w", "ʌ", "t", ...]
    >>> per(phoneme_tokens(rendering.phonemes), hyp)   # 0.0 = perfect
"""
from __future__ import annotations

import json
import random
import time
from dataclasses import asdict, dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file
from safetensors.torch import save as safetensors_bytes
from tqdm.auto import tqdm

from aqaa_ref.blocks import TransformerBlock
from aqaa_ref.audio import MelConfig, load_audio, log_mel
from aqaa_ref.lr_schedule import warmup_cosine
from aqaa_ref.cache import atomic_write_bytes, atomic_write_json, cache_dir, config_hash
from aqaa_ref.data import phoneme_tokens
from aqaa_ref.metrics import BLANK, UNK, corpus_per, greedy_decode, per  # noqa: F401 (re-exported)
from aqaa_ref import presets
from aqaa_ref.precision import autocast


# ----------------------------------------------------------------------------- the model

@dataclass(frozen=True)
class RecognizerConfig:
    """Model and training. Presets: ``tiny`` (tests), ``toy``, ``paper`` (a larger judge)."""

    name: str = "toy"
    mel: MelConfig = field(default_factory=MelConfig)   # 16 kHz, 80 bins, 25 ms window, 10 ms hop
    dim: int = 160
    n_layers: int = 3
    n_heads: int = 4
    pos_kernel: int = 15         # depthwise conv positional encoding (frames at 20 ms)
    dropout: float = 0.1
    # SpecAugment-style masking during training (values after mean removal)
    freq_masks: int = 2
    freq_mask_width: int = 10
    time_masks: int = 2
    time_mask_width: int = 10
    # training
    seed: int = 0
    steps: int = 500
    batch_frames: int = 8_000    # mel frames per batch (80 s of audio)
    lr: float = 2e-3
    warmup: int = 60
    max_clips: int | None = None
    bf16: bool = True               # bf16 autocast while training, where this CPU runs it faster (aqaa_ref.precision)

    @classmethod
    def from_preset(cls, preset: str, **overrides) -> "RecognizerConfig":
        return cls(**{"name": preset, **presets.preset("recognizer", preset), **overrides})


class CTCRecognizer(nn.Module):
    """Log-mel (B, n_mels, F) -> CTC log-probs (B, ceil(F / 2), n_classes)."""

    def __init__(self, cfg: RecognizerConfig, n_classes: int):
        super().__init__()
        self.cfg = cfg
        d = cfg.dim
        self.conv1 = nn.Conv1d(cfg.mel.n_mels, d, 3, padding=1)
        self.conv2 = nn.Conv1d(d, d, 3, stride=2, padding=1)           # 10 ms -> 20 ms frames
        self.pos = nn.Conv1d(d, d, cfg.pos_kernel, padding=cfg.pos_kernel // 2, groups=d)
        self.blocks = nn.ModuleList(TransformerBlock(d, cfg.n_heads) for _ in range(cfg.n_layers))
        self.drop = nn.Dropout(cfg.dropout)
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, n_classes)

    def forward(self, mel: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """mel: (B, n_mels, F) mean-removed log-mel; mask: (B, 1, F) -> (B, ceil(F/2), V) log-probs."""
        x = F.gelu(self.conv1(mel * mask))
        mask2 = mask[:, :, ::2]                                          # (B, 1, ceil(F/2))
        x = F.gelu(self.conv2(x)) * mask2                                # (B, D, F2)
        x = self.drop(x + self.pos(x))
        for block in self.blocks:
            x = self.drop(block(x, mask2))
        return self.head(self.norm(x.transpose(1, 2))).float().log_softmax(-1)


def features(wav: torch.Tensor, cfg: RecognizerConfig) -> torch.Tensor:
    """(T,) 16 kHz -> (n_mels, F) log-mel with the per-utterance mean of each bin removed."""
    mel = log_mel(wav, cfg.mel.sample_rate, cfg.mel)
    return mel - mel.mean(dim=1, keepdim=True)


class Recognizer:
    """A trained :class:`CTCRecognizer` with its phoneme inventory."""

    def __init__(self, model: CTCRecognizer, phonemes: list[str]):
        self.model, self.phonemes = model.eval(), list(phonemes)
        self.index = {p: i + 2 for i, p in enumerate(self.phonemes)}
        self.cfg = model.cfg

    def encode(self, tokens: list[str]) -> list[int]:
        return [self.index.get(t, UNK) for t in tokens]

    def decode_ids(self, ids) -> list[str]:
        names = ["<blank>", "<unk>", *self.phonemes]
        return [names[i] for i in ids]

    @torch.no_grad()
    def transcribe_batch(self, wavs: list[torch.Tensor], sample_rate: int) -> list[list[str]]:
        """Greedy CTC on a list of (T,) waveforms -> phoneme tokens per waveform."""
        feats = []
        for w in wavs:
            w = load_audio(w, self.cfg.mel.sample_rate, source_rate=sample_rate, max_seconds=None)
            feats.append(features(w, self.cfg))
        mel, mask = pad_batch(feats)
        logp = self.model(mel, mask)                                     # (B, F2, V)
        lengths = mask[:, 0, ::2].sum(1).long()
        out = []
        for b in range(len(wavs)):
            out.append(self.decode_ids(greedy_decode(logp[b, : lengths[b]])))
        return out

    def transcribe(self, wav, sample_rate: int) -> list[str]:
        """(T,) waveform at ``sample_rate`` -> phoneme tokens (empty audio -> [])."""
        wav = torch.as_tensor(wav, dtype=torch.float32).reshape(-1)
        if wav.numel() < self.cfg.mel.n_fft:
            return []
        return self.transcribe_batch([wav], sample_rate)[0]


def pad_batch(feats: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """[(n_mels, F_i)] -> (B, n_mels, F_max) zero-padded, mask (B, 1, F_max)."""
    fmax = max(f.shape[1] for f in feats)
    mel = torch.zeros(len(feats), feats[0].shape[0], fmax)
    mask = torch.zeros(len(feats), 1, fmax)
    for b, f in enumerate(feats):
        mel[b, :, : f.shape[1]], mask[b, :, : f.shape[1]] = f, 1.0
    return mel, mask


# ----------------------------------------------------------------------------- training

def spec_augment(mel: torch.Tensor, cfg: RecognizerConfig, rng: random.Random) -> torch.Tensor:
    """Zero random frequency bands and time spans (per example). (B, n_mels, F) -> same."""
    mel = mel.clone()
    B, M, T = mel.shape
    for b in range(B):
        for _ in range(cfg.freq_masks):
            w = rng.randrange(cfg.freq_mask_width + 1)
            f0 = rng.randrange(M - w + 1)
            mel[b, f0:f0 + w] = 0
        for _ in range(cfg.time_masks):
            w = rng.randrange(cfg.time_mask_width + 1)
            t0 = rng.randrange(max(1, T - w + 1))
            mel[b, :, t0:t0 + w] = 0
    return mel


def _length_batches(lengths: list[int], batch_frames: int, rng: random.Random) -> list[list[int]]:
    """Indices grouped by similar length, each batch under batch_frames padded frames, shuffled."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches, cur = [], []
    for i in order:
        if cur and (len(cur) + 1) * lengths[i] > batch_frames:
            batches.append(cur)
            cur = []
        cur.append(i)
    batches.append(cur)
    rng.shuffle(batches)
    return batches


def train_recognizer(corpus, cfg: RecognizerConfig, progress: bool = True) -> Recognizer:
    """CTC training on the train split's ground-truth clips (every language and seen voice)."""
    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    clips = corpus.utterances("train")
    rng.shuffle(clips)
    clips = clips[: cfg.max_clips] if cfg.max_clips else clips
    targets = [phoneme_tokens(r.phonemes) for _, r in clips]
    phonemes = sorted({p for t in targets for p in t})
    rec = Recognizer(CTCRecognizer(cfg, len(phonemes) + 2), phonemes)
    feats = [features(corpus.load(r, cfg.mel.sample_rate), cfg).to(torch.float16)
             for _, r in tqdm(clips, desc="recognizer features", disable=not progress, leave=False)]
    ids = [torch.tensor(rec.encode(t)) for t in targets]
    model = rec.model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.01)
    t0, losses, batches = time.time(), [], []
    bar = tqdm(range(cfg.steps), desc="recognizer", disable=not progress)
    for step in bar:
        if not batches:
            batches = _length_batches([f.shape[1] for f in feats], cfg.batch_frames, rng)
        idx = batches.pop()
        mel, mask = pad_batch([feats[i].float() for i in idx])
        mel = spec_augment(mel, cfg, rng) * mask
        for g in opt.param_groups:
            g["lr"] = warmup_cosine(step, cfg.steps, cfg.lr, cfg.warmup, floor=0.1)
        with autocast(cfg.bf16):
            logp = model(mel, mask)                                      # (B, F2, V)
        in_len = mask[:, 0, ::2].sum(1).long()
        tgt = [ids[i] for i in idx]
        loss = F.ctc_loss(logp.transpose(0, 1), torch.cat(tgt), in_len, torch.tensor([len(t) for t in tgt]),
                          blank=BLANK, zero_infinity=True)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
        bar.set_postfix(ctc=f"{sum(losses[-20:]) / len(losses[-20:]):.3f}")
    model.eval()
    rec.train_info = {"train_seconds": time.time() - t0, "n_params": sum(p.numel() for p in model.parameters()),
                      "n_clips": len(clips), "final_ctc": sum(losses[-20:]) / len(losses[-20:]), "losses": losses}
    return rec


def save_recognizer(rec: Recognizer, folder) -> None:
    atomic_write_bytes(folder / "model.safetensors",
                       safetensors_bytes({k: v.contiguous() for k, v in rec.model.state_dict().items()}))
    info = {k: v for k, v in getattr(rec, "train_info", {}).items() if k != "losses"}
    atomic_write_json(folder / "config.json", {"config": asdict(rec.cfg), "phonemes": rec.phonemes, "train_info": info})


def recognizer_from_state(meta: dict, state: dict) -> Recognizer:
    """A Recognizer from its saved config.json contents and weights."""
    cfg = RecognizerConfig(**{**meta["config"], "mel": MelConfig(**meta["config"]["mel"])})
    model = CTCRecognizer(cfg, len(meta["phonemes"]) + 2)
    model.load_state_dict(state)
    rec = Recognizer(model, meta["phonemes"])
    rec.train_info = meta.get("train_info", {})
    return rec


def load_recognizer(folder) -> Recognizer:
    return recognizer_from_state(json.loads((folder / "config.json").read_text()),
                                 load_file(str(folder / "model.safetensors")))


def recognizer_dir(corpus, cfg: RecognizerConfig):
    """The cache folder of the recognizer trained with ``cfg`` on ``corpus``."""
    return cache_dir() / "recognizer" / config_hash(cfg, corpus.config)


def load_or_train_recognizer(corpus, cfg: RecognizerConfig, progress: bool = True) -> Recognizer:
    """Cached under cache_dir()/recognizer/<hash(cfg, corpus config)>; trained on a miss."""
    folder = recognizer_dir(corpus, cfg)
    if (folder / "config.json").exists():
        return load_recognizer(folder)
    rec = train_recognizer(corpus, cfg, progress)
    save_recognizer(rec, folder)
    return rec


def evaluate_recognizer(rec: Recognizer, corpus, split: str = "test", batch: int = 16) -> dict:
    """Pooled PER on ground-truth clips of a split, overall and per voice."""
    clips = corpus.utterances(split)
    by_voice: dict = {}
    for k in range(0, len(clips), batch):
        chunk = clips[k:k + batch]
        hyps = rec.transcribe_batch([corpus.load(r, 16_000) for _, r in chunk], 16_000)
        for (sp, r), h in zip(chunk, hyps):
            by_voice.setdefault(sp.voice, []).append((phoneme_tokens(r.phonemes), h))
    out = {v: {"per": corpus_per(p), "clips": len(p)} for v, p in sorted(by_voice.items())}
    out["all"] = {"per": corpus_per([x for p in by_voice.values() for x in p]), "clips": len(clips)}
    return out

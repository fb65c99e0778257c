"""Training the flow vocoder: clips -> (codes, mel) pairs -> OT-CFM, and persistence.

``load_or_train_vocoder`` caches a trained model under ``cache_dir()/vocoder/<hash of the
training config, the corpus config and the tokenizer's identity>`` (safetensors + JSON).
"""
from __future__ import annotations

import hashlib
import json
import random
import time
from dataclasses import asdict, replace

import torch
from safetensors.torch import load_file
from safetensors.torch import save as safetensors_bytes
from tqdm.auto import tqdm

from aqaa_ref.audio import MelConfig, peak_normalize
from aqaa_ref.cache import _jsonable, atomic_write_bytes, atomic_write_json, cache_dir, config_hash
from aqaa_ref.lr_schedule import warmup_cosine
from aqaa_ref.vocoder.flow import FlowVocoder, VocoderConfig
from aqaa_ref.vocoder.mel2wav import mel_frames
from aqaa_ref.vocoder.token_encoder import GROUP_SIZE, interleave_codes
from aqaa_ref.vocoder.unet import UNetConfig
from aqaa_ref.precision import autocast


# ----------------------------------------------------------------------------- training

INFERENCE_FIELDS = ("n_steps", "guidance", "temperature")

def tokenizer_identity(tokenizer) -> str:
    """A short hash that changes when the tokenizer's weights or config change."""
    h = hashlib.sha1(type(tokenizer).__qualname__.encode())
    # the DualTokenizer holds two modules; a plain module or any object with state_dict() also works
    parts = [getattr(tokenizer, n) for n in ("linguistic", "semantic") if hasattr(getattr(tokenizer, n, None), "state_dict")]
    parts = parts or ([tokenizer] if hasattr(tokenizer, "state_dict") else [])
    for part in parts:
        for k, v in sorted(part.state_dict().items()):
            h.update(k.encode())
            h.update(v.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    if not parts:
        h.update(repr(getattr(tokenizer, "config", tokenizer)).encode())
    return h.hexdigest()[:12]


def codebook_sizes(tokenizer) -> tuple[int, int]:
    """(n_linguistic, n_semantic) of a tokenizer: its ``vocab`` (an AudioVocab) or attributes of those names."""
    src = getattr(tokenizer, "vocab", tokenizer)
    try:
        return int(src.n_linguistic), int(src.n_semantic)
    except AttributeError:
        raise ValueError("tokenizer must expose n_linguistic and n_semantic (codebook sizes)") from None


def prepare_examples(corpus, tokenizer, split: str, max_clips, seed: int, mel: MelConfig, progress=True,
                     extra_speech: int = 0):
    """Tokenize and mel every clip: -> list of (codes (5G,) long, log-mel (n_mels, 12G) fp16).

    ``extra_speech`` free-speech clips (:func:`aqaa_ref.data.speech_pool.speech_pool`: the
    split's deliveries saying new word sequences) are added to the split's own clips.

    The mel targets are of peak-normalised audio (Step-Audio's pre-processing, which the
    tokenizer applies too): tokens carry no loudness, so the vocoder speaks at peak level.
    """
    n_lin, _ = codebook_sizes(tokenizer)
    fpg = round(0.12 * mel.sample_rate / mel.hop_length)
    clips = corpus.utterances(split)
    random.Random(seed).shuffle(clips)
    clips = clips[:max_clips] if max_clips else clips
    wavs = [peak_normalize(corpus.load(r, mel.sample_rate)) for _, r in
            tqdm(clips, desc=f"loading {split}", disable=not progress, leave=False)]
    if extra_speech:
        from aqaa_ref.data.speech_pool import speech_pool
        wavs += [peak_normalize(w) for _, w in speech_pool(corpus, extra_speech, seed, mel.sample_rate,
                                                           progress=progress)]
    if hasattr(tokenizer, "encode_batch"):
        tokens = tokenizer.encode_batch(wavs, mel.sample_rate, progress=progress)
    else:
        tokens = [tokenizer.encode(w, mel.sample_rate) for w in wavs]
    out = []
    for wav, (lin, sem) in zip(wavs, tokens):
        codes = interleave_codes(lin, sem, n_lin)
        G = codes.numel() // GROUP_SIZE
        m = mel_frames(wav, mel)[:, : G * fpg]
        G = min(G, m.shape[1] // fpg)                  # the tail group may lack frames
        if G:
            out.append((codes[: G * GROUP_SIZE], m[:, : G * fpg].to(torch.float16)))
    return out


def _batch(examples, rng, cfg: VocoderConfig):
    """Random crops of up to max_groups groups -> (codes (B, 5G), mel (B, n_mels, 12G), n_groups)."""
    fpg, picks = cfg.frames_per_group, []
    for _ in range(cfg.batch_size):
        codes, mel = examples[rng.randrange(len(examples))]
        G = codes.numel() // GROUP_SIZE
        n = min(G, cfg.max_groups)
        g0 = rng.randrange(0, G - n + 1)
        picks.append((codes[g0 * GROUP_SIZE:(g0 + n) * GROUP_SIZE], mel[:, g0 * fpg:(g0 + n) * fpg].float(), n))
    Gm = max(n for *_, n in picks)
    codes = torch.zeros(len(picks), Gm * GROUP_SIZE, dtype=torch.long)
    mels = torch.zeros(len(picks), cfg.mel.n_mels, Gm * fpg)
    for b, (c, m, n) in enumerate(picks):
        codes[b, : c.numel()], mels[b, :, : m.shape[1]] = c, m
    return codes, mels, [n for *_, n in picks]


class EMA:
    """An exponential moving average of a model's floating-point weights.

    ``avg <- d * avg + (1 - d) * w`` after every optimiser step, with the warm-up
    ``d_t = min(decay, (1 + t) / (10 + t))`` so that early averages do not remember the
    random initialisation. Flow-matching and diffusion models are usually sampled from such
    an average: it smooths the last steps' noise out of the velocity field.
    """

    def __init__(self, model: torch.nn.Module, decay: float):
        self.decay, self.t = decay, 0
        self.avg = {k: v.detach().clone() for k, v in model.state_dict().items() if v.is_floating_point()}

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        d = min(self.decay, (1 + self.t) / (10 + self.t))
        self.t += 1
        for k, v in model.state_dict().items():
            if k in self.avg:
                self.avg[k].lerp_(v.detach(), 1.0 - d)

    @torch.no_grad()
    def copy_to(self, model: torch.nn.Module) -> None:
        model.load_state_dict({**model.state_dict(), **self.avg})


def train_vocoder(corpus, tokenizer, cfg: VocoderConfig, progress: bool = True) -> FlowVocoder:
    """Train the token -> mel flow model on the train split's clips, tokenized by ``tokenizer``."""
    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    n_lin, n_sem = codebook_sizes(tokenizer)
    examples = prepare_examples(corpus, tokenizer, "train", cfg.max_clips, cfg.seed, cfg.mel, progress,
                                cfg.extra_speech)
    model = FlowVocoder(cfg, n_lin, n_sem)
    allmel = torch.cat([m.float() for _, m in examples], dim=1)     # (n_mels, all frames)
    model.mel_mean.copy_(allmel.mean(dim=1, keepdim=True))
    model.mel_std.copy_(allmel.std(dim=1, keepdim=True).clamp(min=0.1))
    del allmel
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.01)
    gen = torch.Generator().manual_seed(cfg.seed)
    ema = EMA(model, cfg.ema_decay) if cfg.ema_decay else None
    t0, log = time.time(), []
    bar = tqdm(range(cfg.steps), desc="flow vocoder", disable=not progress)
    model.train()
    for step in bar:
        codes, mels, n_groups = _batch(examples, rng, cfg)
        for g in opt.param_groups:
            g["lr"] = warmup_cosine(step, cfg.steps, cfg.lr, cfg.warmup, floor=0.1)
        with autocast(cfg.bf16):
            loss, parts = model.loss(codes, mels, n_groups, gen)
        opt.zero_grad(set_to_none=True)
        loss.float().backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if ema is not None:
            ema.update(model)
        log.append(parts)
        recent = log[-20:]
        bar.set_postfix(cfm=f"{sum(p['cfm'] for p in recent) / len(recent):.3f}",
                        prior=f"{sum(p['prior'] for p in recent) / len(recent):.3f}")
    if ema is not None:
        ema.copy_to(model)
    model.train_info = {"train_seconds": time.time() - t0, "n_params": sum(p.numel() for p in model.parameters()),
                        "n_examples": len(examples), "log": log}
    return model.eval()


def save_vocoder(model: FlowVocoder, folder) -> None:
    """model.safetensors then config.json (the completion marker), both atomic."""
    atomic_write_bytes(folder / "model.safetensors",
                       safetensors_bytes({k: v.contiguous() for k, v in model.state_dict().items()}))
    info = {k: v for k, v in getattr(model, "train_info", {}).items() if k != "log"}
    atomic_write_json(folder / "config.json", {"config": asdict(model.cfg), "n_linguistic": model.n_linguistic,
                                               "n_semantic": model.n_semantic, "train_info": info})


def vocoder_config(c: dict) -> VocoderConfig:
    """A VocoderConfig from its saved JSON form (``asdict``)."""
    c = dict(c)
    c["mel"] = MelConfig(**c["mel"])
    c["unet"] = UNetConfig(**{**c["unet"], "channels": tuple(c["unet"]["channels"])})
    return VocoderConfig(**c)


def vocoder_dir(corpus, tokenizer, cfg: VocoderConfig):
    """The cache folder of the flow vocoder trained with ``cfg`` on ``corpus``'s clips, tokenized
    by ``tokenizer``: the hash of the training fields, the corpus config and the tokenizer's identity.
    The inference settings (n_steps, guidance, temperature) are not part of the key."""
    training = {k: v for k, v in _jsonable(cfg).items() if k not in INFERENCE_FIELDS}
    return cache_dir() / "vocoder" / config_hash(training, corpus.config, tokenizer_identity(tokenizer))


def load_vocoder(folder) -> FlowVocoder:
    meta = json.loads((folder / "config.json").read_text())
    model = FlowVocoder(vocoder_config(meta["config"]), meta["n_linguistic"], meta["n_semantic"])
    model.load_state_dict(load_file(str(folder / "model.safetensors")))
    model.train_info = meta.get("train_info", {})
    return model.eval()


def with_inference_settings(model: FlowVocoder, cfg: VocoderConfig) -> FlowVocoder:
    """``model`` (in place) sampling with ``cfg``'s n_steps, guidance and temperature."""
    model.cfg = replace(model.cfg, **{k: getattr(cfg, k) for k in INFERENCE_FIELDS})
    return model


def load_or_train_vocoder(corpus, tokenizer, cfg: VocoderConfig, progress: bool = True) -> FlowVocoder:
    """Cached under cache_dir()/vocoder/<hash(training config, corpus config, tokenizer identity)>.

    The inference settings (n_steps, guidance, temperature) are not part of the key: a
    cached model is returned with the caller's values for them."""
    folder = vocoder_dir(corpus, tokenizer, cfg)
    if (folder / "config.json").exists():
        return with_inference_settings(load_vocoder(folder), cfg)
    model = train_vocoder(corpus, tokenizer, cfg, progress)
    save_vocoder(model, folder)
    return model

"""The token vocoder: 2:3 interleaved audio tokens -> mel (flow matching) -> waveform.

    >>> flow = load_or_train_vocoder(corpus, tokenizer, VocoderConfig.from_preset("toy"))
    >>> m2w = load_or_train_mel2wav(corpus, Mel2WavConfig.from_preset("toy"))
    >>> voc = Vocoder(flow, m2w)
    >>> wav = voc.decode(codes)                    # codes: (5G,) LLSSS, relative to the audio block
    >>> for piece in voc.stream(codes): ...        # the same audio, one 360 ms chunk at a time

Input convention: the vocoder reads the interleaved stream as codes *relative to the
audio block* (linguistic 0..n_l-1, semantic n_l..n_l+n_s-1), like Step-Audio's vocoder
(ids 0..5119). :func:`interleave_codes` builds it from a tokenizer's two code streams;
:func:`to_vocoder_codes` converts a backbone's vocab-offset ids. G groups of tokens give
exactly 12 G mel frames and 12 G x 160 samples (G x 120 ms).

Modules: ``token_encoder`` (codes -> mu), ``unet`` (the velocity estimator), ``flow``
(OT-CFM loss and Euler + guidance sampler), ``mel2wav`` (Griffin-Lim, iSTFT vocoder).
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
from aqaa_ref.cache import atomic_write_bytes, atomic_write_json, cache_dir, config_hash
from aqaa_ref.formats.id_layout import interleave_2_3
from aqaa_ref.lr_schedule import warmup_cosine
from aqaa_ref.vocoder.flow import FlowVocoder, VocoderConfig, cosine_warp, euler_sample, frame_noise, guided_velocity
from aqaa_ref.vocoder.mel2wav import (VOCODER_MEL, GriffinLim, ISTFTVocoder, Mel2WavConfig, load_or_train_mel2wav,
                                      mel_frames, train_mel2wav)
from aqaa_ref.vocoder.token_encoder import GROUP_SIZE, check_codes, to_vocoder_codes
from aqaa_ref.vocoder.unet import UNet1D, UNetConfig

__all__ = ["Vocoder", "StreamDecoder", "FlowVocoder", "VocoderConfig", "UNet1D", "UNetConfig", "Mel2WavConfig", "GriffinLim",
           "ISTFTVocoder", "VOCODER_MEL", "interleave_codes", "to_vocoder_codes", "check_codes", "mel_frames",
           "train_vocoder", "load_or_train_vocoder", "codebook_sizes", "tokenizer_identity", "save_vocoder", "load_vocoder",
           "train_mel2wav", "load_or_train_mel2wav", "euler_sample", "guided_velocity", "cosine_warp", "frame_noise"]


def interleave_codes(linguistic, semantic, n_linguistic: int) -> torch.Tensor:
    """(Nl,), (Ns,) codebook indices -> (5G,) vocoder codes LLSSS, G = min(Nl // 2, Ns // 3).

    Semantic codes are shifted by ``n_linguistic``; the incomplete tail group is dropped.
    """
    return interleave_2_3(torch.as_tensor(linguistic, dtype=torch.long), torch.as_tensor(semantic, dtype=torch.long),
                          semantic_offset=n_linguistic)


# ----------------------------------------------------------------------------- inference

class Vocoder:
    """Tokens -> waveform: a :class:`FlowVocoder` and a mel-to-wave model (either kind).

    ``decode(codes) -> (G * 1920,)`` samples at 16 kHz; ``stream(codes)`` yields the same
    audio in pieces, one ``chunk_groups`` block of tokens at a time.
    """

    def __init__(self, flow: FlowVocoder, mel2wav=None):
        self.flow = flow.eval()
        self.mel2wav = mel2wav if mel2wav is not None else GriffinLim(flow.cfg.mel)
        if self.mel2wav.hop_length != flow.cfg.mel.hop_length:
            raise ValueError("flow model and mel2wav disagree on the mel hop length")
        self.sample_rate, self.hop = flow.cfg.mel.sample_rate, flow.cfg.mel.hop_length
        self.fpg = flow.cfg.frames_per_group

    def codes(self, codes) -> torch.Tensor:
        """Validate (one-line ValueError) and drop an incomplete tail group. -> (5G,)."""
        return check_codes(codes, self.flow.n_linguistic, self.flow.n_semantic)

    @torch.no_grad()
    def tokens_to_mel(self, codes, n_steps=None, guidance=None, seed: int = 0, trajectory=None,
                      temperature=None) -> torch.Tensor:
        """(N,) codes -> (n_mels, 12 G) log-mel. None: the model config's inference settings."""
        return self.flow.sample(self.codes(codes), n_steps, guidance, seed=seed, trajectory=trajectory,
                                temperature=temperature)

    @torch.no_grad()
    def decode(self, codes, n_steps=None, guidance=None, seed: int = 0, temperature=None) -> torch.Tensor:
        """(N,) codes -> (12 G * hop,) float32 waveform (empty codes -> empty audio)."""
        mel = self.tokens_to_mel(codes, n_steps, guidance, seed, temperature=temperature)
        return self.mel2wav(mel).float()

    def stream(self, codes, chunk_groups: int = 3, context_groups: int = 3, overlap_frames: int = 4,
               n_steps=None, guidance=None, seed: int = 0):
        """Decode chunk by chunk; yields (samples,) pieces whose concatenation is the answer.

        The offline view of :class:`StreamDecoder` (which also takes the codes as they arrive).
        """
        codes = self.codes(codes)
        dec = StreamDecoder(self, chunk_groups, context_groups, overlap_frames, n_steps, guidance, seed)
        yield from dec.push(codes, final=True)


class StreamDecoder:
    """Incremental decoding: ``push`` codes as the backbone emits them, get audio pieces back.

    Each chunk of ``chunk_groups`` new groups (3 = one 10:15 block = 360 ms) is decoded
    with ``context_groups`` groups of earlier tokens in front, on the same absolute-frame
    noise as an offline decode. The last ``overlap_frames`` of every chunk (made without
    right context) are held back and cross-faded (raised cosine) with the next chunk's
    version of the same frames, so chunk seams are smooth. The first piece is ready after
    one chunk of tokens: that is the time to first audio; ``first_chunk_groups`` (e.g. 1 =
    120 ms) makes that first chunk smaller, so audio starts sooner. ``finish`` decodes the
    remaining (< chunk_groups) groups and releases the held-back tail.

        dec = StreamDecoder(vocoder)
        for codes in arriving:                 # any lengths; incomplete groups wait
            for piece in dec.push(codes): play(piece)
        for piece in dec.finish(): play(piece)
    """

    def __init__(self, vocoder: "Vocoder", chunk_groups: int = 3, context_groups: int = 3, overlap_frames: int = 4,
                 n_steps=None, guidance=None, seed: int = 0, first_chunk_groups: int | None = None):
        if overlap_frames > context_groups * vocoder.fpg:
            raise ValueError("overlap_frames must not exceed the context (context_groups * frames_per_group)")
        if chunk_groups < 1 or (first_chunk_groups is not None and first_chunk_groups < 1):
            raise ValueError(f"chunk sizes must be >= 1, got {chunk_groups} and {first_chunk_groups}")
        self.voc, self.chunk, self.context = vocoder, chunk_groups, context_groups
        self.first = first_chunk_groups or chunk_groups
        self.n_steps, self.guidance, self.seed = n_steps, guidance, seed
        self.ov = overlap_frames * vocoder.hop
        self.fade = (0.5 - 0.5 * torch.cos(torch.linspace(0, torch.pi, self.ov))) if self.ov else torch.zeros(0)
        self.codes = torch.zeros(0, dtype=torch.long)   # every code pushed so far (complete groups first)
        self.done_groups = 0                            # groups already decoded
        self.held = None                                # (ov,) tail awaiting the cross-fade

    @torch.no_grad()
    def push(self, codes, final: bool = False) -> list[torch.Tensor]:
        """Append codes (any length, LLSSS order); return the pieces that became ready.

        ``final=True``: no more codes will come, so everything is decoded now (an incomplete
        tail group is dropped) and nothing is held back."""
        codes = torch.as_tensor(codes, dtype=torch.long).reshape(-1)
        self.codes = torch.cat([self.codes, codes])
        G, pieces = self.codes.numel() // GROUP_SIZE, []
        while G - self.done_groups >= (size := self.chunk if self.done_groups else self.first):
            g1 = self.done_groups + size
            pieces.append(self._decode(g1, last=final and g1 == G))
        if final:
            if G > self.done_groups:
                pieces.append(self._decode(G, last=True))
            elif self.held is not None:
                pieces.append(self.held)
            self.held = None
        return pieces

    def finish(self) -> list[torch.Tensor]:
        """No more codes: decode what is left and release the held-back tail."""
        return self.push([], final=True)

    def _decode(self, g1: int, last: bool) -> torch.Tensor:
        voc, hop, ov = self.voc, self.voc.hop, self.ov
        g0 = self.done_groups
        c0 = max(0, g0 - self.context)                                  # window = groups [c0, g1)
        window = voc.codes(self.codes[c0 * GROUP_SIZE: g1 * GROUP_SIZE])
        noise = frame_noise(self.seed, c0, g1 - c0, voc.flow.cfg.mel.n_mels, voc.fpg)
        mel = voc.flow.sample(window, self.n_steps, self.guidance, noise=noise)
        wav = voc.mel2wav(mel).float()                                  # samples of groups [c0, g1)
        start = (g0 - c0) * voc.fpg * hop                               # first new sample in the window
        piece = [self.held * (1 - self.fade) + wav[start - ov: start] * self.fade] if self.held is not None else []
        piece.append(wav[start: wav.numel() if last else wav.numel() - ov])
        self.held = None if last else wav[wav.numel() - ov:]
        self.done_groups = g1
        return torch.cat(piece)


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


def prepare_examples(corpus, tokenizer, split: str, max_clips, seed: int, mel: MelConfig, progress=True):
    """Tokenize and mel every clip: -> list of (codes (5G,) long, log-mel (n_mels, 12G) fp16).

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


def train_vocoder(corpus, tokenizer, cfg: VocoderConfig, progress: bool = True) -> FlowVocoder:
    """Train the token -> mel flow model on the train split's clips, tokenized by ``tokenizer``."""
    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    n_lin, n_sem = codebook_sizes(tokenizer)
    examples = prepare_examples(corpus, tokenizer, "train", cfg.max_clips, cfg.seed, cfg.mel, progress)
    model = FlowVocoder(cfg, n_lin, n_sem)
    allmel = torch.cat([m.float() for _, m in examples], dim=1)     # (n_mels, all frames)
    model.mel_mean.copy_(allmel.mean(dim=1, keepdim=True))
    model.mel_std.copy_(allmel.std(dim=1, keepdim=True).clamp(min=0.1))
    del allmel
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.01)
    gen = torch.Generator().manual_seed(cfg.seed)
    t0, log = time.time(), []
    bar = tqdm(range(cfg.steps), desc="flow vocoder", disable=not progress)
    model.train()
    for step in bar:
        codes, mels, n_groups = _batch(examples, rng, cfg)
        for g in opt.param_groups:
            g["lr"] = warmup_cosine(step, cfg.steps, cfg.lr, cfg.warmup, floor=0.1)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
            loss, parts = model.loss(codes, mels, n_groups, gen)
        opt.zero_grad(set_to_none=True)
        loss.float().backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        log.append(parts)
        recent = log[-20:]
        bar.set_postfix(cfm=f"{sum(p['cfm'] for p in recent) / len(recent):.3f}",
                        prior=f"{sum(p['prior'] for p in recent) / len(recent):.3f}")
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


def load_vocoder(folder) -> FlowVocoder:
    meta = json.loads((folder / "config.json").read_text())
    c = dict(meta["config"])
    c["mel"] = MelConfig(**c["mel"])
    c["unet"] = UNetConfig(**{**c["unet"], "channels": tuple(c["unet"]["channels"])})
    model = FlowVocoder(VocoderConfig(**c), meta["n_linguistic"], meta["n_semantic"])
    model.load_state_dict(load_file(str(folder / "model.safetensors")))
    model.train_info = meta.get("train_info", {})
    return model.eval()


def load_or_train_vocoder(corpus, tokenizer, cfg: VocoderConfig, progress: bool = True) -> FlowVocoder:
    """Cached under cache_dir()/vocoder/<hash(training config, corpus config, tokenizer identity)>.

    The inference settings (n_steps, guidance, temperature) are not part of the key: a
    cached model is returned with the caller's values for them."""
    training = {k: v for k, v in asdict(cfg).items() if k not in INFERENCE_FIELDS}
    folder = cache_dir() / "vocoder" / config_hash(training, corpus.config, tokenizer_identity(tokenizer))
    if (folder / "config.json").exists():
        model = load_vocoder(folder)
        model.cfg = replace(model.cfg, **{k: getattr(cfg, k) for k in INFERENCE_FIELDS})
        return model
    model = train_vocoder(corpus, tokenizer, cfg, progress)
    save_vocoder(model, folder)
    return model

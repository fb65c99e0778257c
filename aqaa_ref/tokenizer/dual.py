"""The dual-codebook tokenizer: wav -> (linguistic 16.67 Hz, semantic 25 Hz) -> one LLSSS id stream.

    >>> tok = load_or_train_dual(corpus, DualConfig.from_preset("toy"))
    >>> l, s = tok.encode(wav, sample_rate=22_050)   # (T//960,), (T//640,) codes at 16 kHz
    >>> ids = tok.interleave(l, s)                   # (5 G,) LLSSS groups, offset ids
    >>> l2, s2 = tok.deinterleave(ids)               # the first 2G / 3G codes back

Input handling (:meth:`DualTokenizer.prepare`): any shape :func:`aqaa_ref.audio.load_audio`
accepts (a path, bytes, or an array (T,), (C, T), (T, C)), any sample rate; channels are
averaged, the audio resampled to 16 kHz and peak-normalised like Step-Audio (divide by
max(|x|, 0.01), times 0.999). Lengths: a clip of T samples at 16 kHz gives exactly
``T // 960`` linguistic and ``T // 640`` semantic tokens (token i covers samples
``[960 i, 960 (i + 1))`` resp. ``[640 i, 640 (i + 1))``); a partial token at the end is
dropped. Audio shorter than one group (120 ms) therefore gives at most 1 + 2 codes and
an *empty* interleaved sequence. Silence is valid input (peak normalisation leaves it
near zero) and encodes to one repeated code per stream once the encoders' receptive
field has passed. Empty or non-finite input raises :class:`aqaa_ref.audio.AudioError`.

Id layout (Step-Audio, facts §1; ``AudioVocab``): linguistic code c -> ``text_vocab_size + c``,
semantic code c -> ``text_vocab_size + n_linguistic + c``; groups of 2 + 3 = 120 ms;
the incomplete tail group dropped: G = min(len(l) // 2, len(s) // 3).
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from tqdm.auto import tqdm

from aqaa_ref.audio import TOKENIZER_SAMPLE_RATE, load_audio
from aqaa_ref.cache import atomic_write_bytes, atomic_write_json, cache_dir, config_hash
from aqaa_ref.formats.id_layout import GROUP, GROUP_SIZE, AudioVocab, deinterleave_2_3, interleave_2_3
from aqaa_ref.threads import torch_threads
from aqaa_ref.tokenizer.ctc import PhonemeInventory
from aqaa_ref.tokenizer.features import causal_log_mel, load_clips
from aqaa_ref.tokenizer.linguistic import LinguisticConfig, LinguisticTokenizer, train_linguistic
from aqaa_ref.tokenizer.semantic import SemanticConfig, SemanticTokenizer, train_semantic
from aqaa_ref import presets

GROUP_SAMPLES = 1920      # 120 ms at 16 kHz: the common multiple of 960 and 640
CHUNK_SAMPLES = 3840      # Step-Audio's 240 ms streaming chunk = 2 groups


@dataclass(frozen=True)
class DualConfig:
    """Both tokenizers' configs plus the text vocabulary size used for the id offsets."""

    name: str = "toy"
    linguistic: LinguisticConfig = field(default_factory=LinguisticConfig)
    semantic: SemanticConfig = field(default_factory=SemanticConfig)
    text_vocab_size: int = 1024    # set to the backbone's AudioVocab.text_vocab_size (65,536 in the paper)

    @classmethod
    def from_preset(cls, name: str, **overrides) -> "DualConfig":
        """"tiny" (tests, seconds), "toy" (the CPU pipeline), "paper" (1,024 / 4,096 codes, 65,536 text ids)."""
        kw = dict(name=name, linguistic=LinguisticConfig.from_preset(name), semantic=SemanticConfig.from_preset(name),
                  **presets.preset("dual", name))
        return cls(**{**kw, **overrides})

    @classmethod
    def from_dict(cls, d: dict) -> "DualConfig":
        return cls(name=d["name"], linguistic=LinguisticConfig(**d["linguistic"]),
                   semantic=SemanticConfig(**d["semantic"]), text_vocab_size=d["text_vocab_size"])

    @property
    def vocab(self) -> AudioVocab:
        """The id layout these tokenizers give (known before they are trained)."""
        return AudioVocab(self.text_vocab_size, self.linguistic.codebook_size, self.semantic.codebook_size)

    def training_key(self, corpus_config=None) -> str:
        """Hash of everything that determines the trained weights (not text_vocab_size)."""
        return config_hash(self.linguistic, self.semantic, corpus_config)


class DualTokenizer:
    """The two trained tokenizers behind one interface. Deterministic: eval mode, fp32, argmin.

    ``threads``: torch threads used while encoding (1 by default: on the shared 2-core
    machines two threads were up to 6x *slower* than one; None keeps torch's setting).
    ``source``: None for a tokenizer trained here (its config is its identity), or a tag such
    as ``"shipped-<sha>"`` for weights loaded from a shipped folder: cached audio codes are keyed
    by it, so codes from two different sets of weights never share a cache entry.
    """

    def __init__(self, linguistic: LinguisticTokenizer, semantic: SemanticTokenizer, text_vocab_size: int = 1024,
                 name: str = "custom", threads: int | None = 1, source: str | None = None):
        self.linguistic, self.semantic = linguistic.eval(), semantic.eval()
        self.threads = threads
        self.source = source
        self.config = DualConfig(name, linguistic.cfg, semantic.cfg, text_vocab_size)
        self.vocab = self.config.vocab
        if linguistic.cfg.hop_samples * GROUP[0] != GROUP_SAMPLES or semantic.cfg.hop_samples * GROUP[1] != GROUP_SAMPLES:
            raise ValueError("tokenizer rates must give 2 linguistic and 3 semantic tokens per 120 ms")

    def __repr__(self) -> str:
        v = self.vocab
        return (f"DualTokenizer(linguistic {self.linguistic.cfg.rate_hz:.2f} Hz x {v.n_linguistic} codes, "
                f"semantic {self.semantic.cfg.rate_hz:.0f} Hz x {v.n_semantic} codes, "
                f"ids {v.linguistic_offset}..{v.audio_end - 1})")

    def with_text_vocab_size(self, text_vocab_size: int) -> "DualTokenizer":
        """The same tokenizer with its ids offset after a different text vocabulary."""
        return DualTokenizer(self.linguistic, self.semantic, text_vocab_size, self.config.name, self.threads, self.source)

    # -- audio -> codes -----------------------------------------------------------------
    @staticmethod
    def prepare(wav, sample_rate: int | None = TOKENIZER_SAMPLE_RATE) -> torch.Tensor:
        """Any audio -> (T,) float32 mono, 16 kHz, peak-normalised (see the module docstring)."""
        return load_audio(wav, sample_rate=TOKENIZER_SAMPLE_RATE, source_rate=sample_rate, max_seconds=None,
                          normalize=True)

    @property
    def _pad_samples(self) -> int:
        return max(self.linguistic.lookahead_samples, self.semantic.lookahead_samples)

    @torch.no_grad()
    def _codes(self, wav: torch.Tensor, n_samples: list[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Prepared, zero-padded audio (B, T) with true lengths -> [(l (N_l,), s (N_s,))]."""
        hl, hs = self.linguistic.cfg.hop_samples, self.semantic.cfg.hop_samples
        with torch_threads(self.threads or torch.get_num_threads()):
            mel = causal_log_mel(F.pad(wav, (0, self._pad_samples)))  # (B, F, 80): one mel for both streams
            lc = self.linguistic.codes_from_mel(mel, wav.shape[-1] // hl)
            sc = self.semantic.codes_from_mel(mel, wav.shape[-1] // hs)
        return [(lc[i, : n // hl].clone(), sc[i, : n // hs].clone()) for i, n in enumerate(n_samples)]

    def encode(self, wav, sample_rate: int | None = TOKENIZER_SAMPLE_RATE) -> tuple[torch.Tensor, torch.Tensor]:
        """Audio -> (linguistic codes (T//960,), semantic codes (T//640,)), int64, raw 0..K-1."""
        x = self.prepare(wav, sample_rate)
        return self._codes(x[None], [x.numel()])[0]

    def encode_batch(self, wavs: list, sample_rate: int | None = TOKENIZER_SAMPLE_RATE,
                     max_batch_seconds: float = 120.0, progress: bool = False) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Many clips at once (padded internally, grouped by length); same codes as :meth:`encode`."""
        xs = [self.prepare(w, sample_rate) for w in wavs]
        order = sorted(range(len(xs)), key=lambda i: xs[i].numel())
        out: list = [None] * len(xs)
        budget = int(max_batch_seconds * TOKENIZER_SAMPLE_RATE)
        bar = tqdm(total=len(xs), desc="encoding", unit="clip", disable=not progress)
        i = 0
        while i < len(order):
            j = i + 1
            while j < len(order) and xs[order[j]].numel() * (j - i + 1) <= budget:
                j += 1
            idx = order[i:j]
            batch = torch.nn.utils.rnn.pad_sequence([xs[k] for k in idx], batch_first=True)
            for k, codes in zip(idx, self._codes(batch, [xs[k].numel() for k in idx])):
                out[k] = codes
            bar.update(len(idx))
            i = j
        bar.close()
        return out

    def encode_interleaved(self, wav, sample_rate: int | None = TOKENIZER_SAMPLE_RATE) -> torch.Tensor:
        """Audio -> (5 G,) interleaved ids; empty for audio shorter than 120 ms."""
        return self.interleave(*self.encode(wav, sample_rate))

    # -- codes <-> one id stream --------------------------------------------------------
    def interleave(self, linguistic: torch.Tensor, semantic: torch.Tensor) -> torch.Tensor:
        """(Nl,), (Ns,) raw codes -> (5 G,) ids, LLSSS per group, G = min(Nl // 2, Ns // 3)."""
        l, s = torch.as_tensor(linguistic).long().reshape(-1), torch.as_tensor(semantic).long().reshape(-1)
        v = self.vocab
        if l.numel() and not (0 <= int(l.min()) and int(l.max()) < v.n_linguistic):
            raise ValueError(f"linguistic codes must be in [0, {v.n_linguistic}), got {int(l.min())}..{int(l.max())}")
        if s.numel() and not (0 <= int(s.min()) and int(s.max()) < v.n_semantic):
            raise ValueError(f"semantic codes must be in [0, {v.n_semantic}), got {int(s.min())}..{int(s.max())}")
        return interleave_2_3(l, s, v.linguistic_offset, v.semantic_offset)

    def deinterleave(self, ids) -> tuple[torch.Tensor, torch.Tensor]:
        """(5 G,) interleaved ids -> (linguistic codes (2 G,), semantic codes (3 G,)).

        Raises ValueError (one line) for a sequence that is not whole LLSSS groups of
        in-range ids: wrong length, or a token of the wrong type or out of range at a position.
        """
        ids = torch.as_tensor(ids).long()
        if ids.dim() != 1:
            raise ValueError(f"malformed audio ids: expected a 1-D sequence, got shape {tuple(ids.shape)}")
        n = GROUP_SIZE
        if ids.numel() % n:
            raise ValueError(f"malformed audio ids: length {ids.numel()} is not a multiple of {n} (LLSSS groups)")
        v = self.vocab
        want_l = (torch.arange(ids.numel()) % n) < GROUP[0]  # positions that must be linguistic
        ok = torch.where(want_l, v.is_linguistic(ids), v.is_semantic(ids))
        if not bool(ok.all()):
            p = int((~ok).nonzero()[0])
            kind, lo, hi = ("linguistic", v.linguistic_offset, v.semantic_offset) if want_l[p] else \
                ("semantic", v.semantic_offset, v.audio_end)
            raise ValueError(f"malformed audio ids: position {p} should be a {kind} id in [{lo}, {hi}), got {int(ids[p])}")
        lin, sem = deinterleave_2_3(ids)
        return lin - v.linguistic_offset, sem - v.semantic_offset

    # -- streaming ----------------------------------------------------------------------
    def stream(self) -> "StreamingEncoder":
        return StreamingEncoder(self)

    # -- persistence ----------------------------------------------------------------------
    def save(self, path) -> Path:
        """Write ``weights.safetensors`` then ``config.json`` (last: its presence marks a complete save)."""
        path = Path(path)
        tensors = {f"linguistic.{k}": v.contiguous() for k, v in self.linguistic.state_dict().items()}
        tensors.update({f"semantic.{k}": v.contiguous() for k, v in self.semantic.state_dict().items()})
        atomic_write_bytes(path / "weights.safetensors", st_save(tensors))
        atomic_write_json(path / "config.json", dict(format="aqaa_ref.dual_tokenizer/1", config=asdict(self.config),
                                                     phonemes=list(self.linguistic.inventory.phonemes)))
        return path

    @classmethod
    def load(cls, path, text_vocab_size: int | None = None) -> "DualTokenizer":
        path = Path(path)
        if not (path / "config.json").exists():
            raise FileNotFoundError(f"no saved tokenizer at {path} (config.json missing)")
        meta = json.loads((path / "config.json").read_text())
        cfg = DualConfig.from_dict(meta["config"])
        inv = PhonemeInventory(tuple(meta["phonemes"]))
        ling, sem = LinguisticTokenizer(cfg.linguistic, inv), SemanticTokenizer(cfg.semantic, inv)
        tensors = st_load((path / "weights.safetensors").read_bytes())
        ling.load_state_dict({k[11:]: v for k, v in tensors.items() if k.startswith("linguistic.")})
        sem.load_state_dict({k[9:]: v for k, v in tensors.items() if k.startswith("semantic.")})
        return cls(ling, sem, text_vocab_size or cfg.text_vocab_size, cfg.name)


class StreamingEncoder:
    """Encode a live 16 kHz stream in chunks (240 ms in Step-Audio) with the offline tokens.

    Both encoders are causal with a finite receptive field and a fixed lookahead, so a
    token is final once ``lookahead`` more tokens of audio have arrived. Each :meth:`push`
    re-encodes a bounded window (the receptive field plus the new audio, starting on the
    120 ms grid) and returns the tokens that became final; :meth:`flush` ends the stream
    the way offline encoding ends a clip. Concatenating everything returned equals
    :meth:`DualTokenizer.encode` on the whole stream, up to float round-off in an argmin
    tie (measured: see benchmarks/bench_tokenizer.py). Latency = the lookahead (60 ms).

    The pushed audio must already be 16 kHz mono and normalised: peak normalisation needs
    the whole clip, so a live caller fixes its gain up front (the offline comparison
    normalises the whole clip first, then streams it).
    """

    def __init__(self, tok: DualTokenizer):
        self.tok = tok
        self.buf = torch.zeros(0)
        self.buf_start = 0              # stream sample index of buf[0]
        self.total = 0                  # samples received
        self.done = [0, 0]              # tokens emitted per stream
        ctx = max(tok.linguistic.context_samples, tok.semantic.context_samples)
        self.context = -(-ctx // GROUP_SAMPLES) * GROUP_SAMPLES

    def push(self, chunk: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """chunk: (n,) 16 kHz samples -> newly final (linguistic codes, semantic codes)."""
        self.buf = torch.cat([self.buf, torch.as_tensor(chunk, dtype=torch.float32).reshape(-1)])
        self.total += int(chunk.numel())
        return self._emit(final=False)

    def flush(self) -> tuple[torch.Tensor, torch.Tensor]:
        """End of stream: the remaining tokens, exactly as offline encoding ends a clip."""
        return self._emit(final=True)

    @torch.no_grad()
    def _emit(self, final: bool):
        models = (self.tok.linguistic, self.tok.semantic)
        hops = [m.cfg.hop_samples for m in models]
        ready = [self.total // h - (0 if final else m.cfg.lookahead) for m, h in zip(models, hops)]
        first = min(d * h for d, h in zip(self.done, hops))  # first sample of the earliest pending token
        start = max(0, (first - self.context) // GROUP_SAMPLES * GROUP_SAMPLES)
        wav = self.buf[start - self.buf_start:]
        pad = self.tok._pad_samples if final else 0
        with torch_threads(self.tok.threads or torch.get_num_threads()):
            return self._codes_in_window(wav, pad, start, ready, hops, models)

    def _codes_in_window(self, wav, pad, start, ready, hops, models):
        mel = causal_log_mel(F.pad(wav, (0, pad))[None])
        out = []
        for i, (m, h) in enumerate(zip(models, hops)):
            n_new = max(0, ready[i] - self.done[i])
            if n_new == 0:
                out.append(torch.zeros(0, dtype=torch.long))
                continue
            off = start // h
            codes = m.codes_from_mel(mel, ready[i] - off)[0]
            out.append(codes[self.done[i] - off: ready[i] - off].clone())
            self.done[i] = ready[i]
        keep = max(0, (min(d * h for d, h in zip(self.done, hops)) - self.context) // GROUP_SAMPLES * GROUP_SAMPLES)
        if keep > self.buf_start:  # forget audio no future token can see
            self.buf = self.buf[keep - self.buf_start:]
            self.buf_start = keep
        return out[0], out[1]


# ----------------------------------------------------------------------------- training + cache

def _train_semantic_worker(corpus_config, cfg: DualConfig, phonemes: tuple):
    """Worker process: load the train clips and train the semantic tokenizer (one thread)."""
    from aqaa_ref.data import build_corpus

    log: list = []
    clips = load_clips(build_corpus(corpus_config, progress=False), "train", progress=False)
    t = time.time()
    sem = train_semantic(clips, cfg.semantic, False, log, inventory=PhonemeInventory(phonemes))
    return sem, log, time.time() - t


def train_dual(corpus, cfg: DualConfig = DualConfig(), progress: bool = True, log: dict | None = None,
               concurrent: bool = True) -> DualTokenizer:
    """Load the corpus' training clips once, train both tokenizers. ``log`` gets per-step logs and timings.

    concurrent: train the semantic tokenizer in a worker process while this one trains the
    linguistic one (each trains on one thread, so a 2-core machine does both at once; the
    result is the same as one after the other: each seeds its own generator)."""
    log = {} if log is None else log
    log["linguistic"], log["semantic"] = [], []

    def timed(name, fn):  # wall clock and this process' CPU time (the machine may be shared)
        t, c = time.time(), time.process_time()
        out = fn()
        log[f"{name}_seconds"], log[f"{name}_cpu_seconds"] = time.time() - t, time.process_time() - c
        return out

    clips = timed("features", lambda: load_clips(corpus, "train", progress=progress))
    inventory = PhonemeInventory.from_sequences(c.phonemes for c in clips)
    if not concurrent:
        ling = timed("linguistic", lambda: train_linguistic(clips, cfg.linguistic, progress, log["linguistic"]))
        sem = timed("semantic", lambda: train_semantic(clips, cfg.semantic, progress, log["semantic"],
                                                       inventory=inventory))
        return DualTokenizer(ling, sem, cfg.text_vocab_size, cfg.name)
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("spawn")) as pool:
        job = pool.submit(_train_semantic_worker, corpus.config, cfg, tuple(inventory.phonemes))
        ling = timed("linguistic", lambda: train_linguistic(clips, cfg.linguistic, progress, log["linguistic"]))
        if progress:
            print("[tokenizer] linguistic done; waiting for the semantic tokenizer (training beside it)", flush=True)
        sem, log["semantic"], log["semantic_seconds"] = job.result()
    return DualTokenizer(ling, sem, cfg.text_vocab_size, cfg.name)


def tokenizer_dir(corpus, cfg: DualConfig) -> Path:
    return cache_dir() / "tokenizer" / f"{cfg.name}-{cfg.training_key(corpus.config)}"


def load_or_train_dual(corpus, cfg: DualConfig = DualConfig(), progress: bool = True) -> DualTokenizer:
    """The trained tokenizer for (cfg, corpus config), from cache_dir()/tokenizer/ or trained and saved there.

    The cache key covers both tokenizer configs and the corpus config, not the text vocab
    size (only an offset): a cached tokenizer is returned with ``cfg.text_vocab_size``.
    Training logs are kept beside the weights in ``train_log.json``.
    """
    path = tokenizer_dir(corpus, cfg)
    if (path / "config.json").exists():
        return DualTokenizer.load(path, text_vocab_size=cfg.text_vocab_size)
    log: dict = {}
    tok = train_dual(corpus, cfg, progress, log)
    atomic_write_json(path / "train_log.json", log)
    tok.save(path)
    return tok


def training_log(corpus, cfg: DualConfig) -> dict | None:
    """The ``train_log.json`` saved by :func:`load_or_train_dual`, if any."""
    p = tokenizer_dir(corpus, cfg) / "train_log.json"
    return json.loads(p.read_text()) if p.exists() else None


__all__ = ["DualConfig", "DualTokenizer", "StreamingEncoder", "train_dual", "load_or_train_dual", "training_log",
           "tokenizer_dir", "GROUP", "GROUP_SAMPLES", "CHUNK_SAMPLES"]

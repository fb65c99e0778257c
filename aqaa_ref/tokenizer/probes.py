"""Measurements: phoneme error rate, linear probes (the complementarity table), codebook usage.

The paper's claim (facts §1): linguistic tokens carry phonemic content, semantic tokens
acoustic detail. We test it with *linear probes*: a logistic regression from a stream's
codes (one-hot, in a window of +-W tokens around each token) to

* phoneme identity (frame-aligned, see below),
* pitch class (tertiles of the utterance's measured median F0),
* voice (which eSpeak voice spoke),
* speaking rate class (slow < 150 wpm <= normal <= 200 wpm < fast).

Pitch, voice and rate are utterance properties: every token of an utterance gets its
utterance's label, so the probe asks "can you tell from this ~300 ms of codes?".

Phoneme labels: a forced alignment of the reference phonemes with the *linguistic* CTC
head (20 ms slots, each labelled by the nearest aligned phoneme, ``ctc.slot_labels``);
a token is labelled by the slot at its centre, and only tokens between the first and the
last aligned phoneme are used. The alignment comes from the linguistic model, which
favours the linguistic stream on this probe: keep that in mind when reading the table.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from aqaa_ref.audio import median_f0
from aqaa_ref.data import phoneme_tokens
from aqaa_ref.data import strided
from aqaa_ref.data.styles import UNSEEN_VOICE
from aqaa_ref.threads import torch_threads
from aqaa_ref.tokenizer.ctc import forced_align, greedy_decode, phoneme_error_rate, slot_labels
from aqaa_ref.tokenizer.features import causal_log_mel
from aqaa_ref.tokenizer.kmeans import usage_stats


@dataclass
class Utterance:
    """One encoded clip with everything the probes need."""

    linguistic: torch.Tensor     # (Nl,) codes
    semantic: torch.Tensor       # (Ns,) codes
    slots: torch.Tensor          # (3 Nl,) phoneme id per 20 ms slot (0 = no alignment)
    span: tuple[int, int]        # first and last aligned slot
    hyp: list[int]               # greedy CTC phonemes (ids)
    ref: list[int]               # reference phonemes (ids)
    voice: str
    rate: int
    f0: float                    # median F0 in Hz (NaN if unvoiced)
    language: str


@torch.no_grad()
def collect(tok, corpus, split: str = "test", limit: int | None = None, progress: bool = False) -> list[Utterance]:
    """Encode a split's distinct clips and align their phonemes. -> list of :class:`Utterance`.

    ``limit``: keep that many clips, evenly spaced over the split (``aqaa_ref.data.strided``).
    """
    utts = strided(corpus.utterances(split), limit)
    wavs = [tok.prepare(corpus.load(r, sample_rate=16_000)) for _, r in utts]
    codes = tok.encode_batch(wavs, progress=progress)
    ling = tok.linguistic
    out = []
    with torch_threads(1):
        for (sp, r), w, (l, s) in zip(utts, wavs, codes):
            mel = causal_log_mel(torch.nn.functional.pad(w, (0, ling.lookahead_samples)))[None]
            lp = ling.ctc_log_probs(ling.hidden(mel, len(l)))[0]  # (3 Nl, C)
            ref = ling.inventory.encode(phoneme_tokens(r.phonemes))
            starts = forced_align(lp, ref) if len(ref) else None
            if starts is None:
                lab, span = torch.zeros(lp.shape[0], dtype=torch.long), (0, -1)
            else:
                lab, span = slot_labels(starts, ref, lp.shape[0]), (starts[0], starts[-1])
            out.append(Utterance(l, s, lab, span, greedy_decode(lp), ref, sp.voice, sp.rate,
                                 median_f0(w, 16_000), sp.language))
    return out


def per_by_voice(utts: list[Utterance]) -> dict:
    """CTC phoneme error rate on seen voices and on the unseen voice (m4) separately."""
    groups = {"seen voices": [u for u in utts if u.voice != UNSEEN_VOICE],
              f"unseen voice ({UNSEEN_VOICE})": [u for u in utts if u.voice == UNSEEN_VOICE]}
    return {k: dict(clips=len(v), per=phoneme_error_rate([u.hyp for u in v], [u.ref for u in v]))
            for k, v in groups.items() if v}


def codebook_usage(utts: list[Utterance], tok) -> dict:
    """Fraction of codes used and perplexity for both streams over ``utts``."""
    return {"linguistic": usage_stats(torch.cat([u.linguistic for u in utts]), tok.vocab.n_linguistic),
            "semantic": usage_stats(torch.cat([u.semantic for u in utts]), tok.vocab.n_semantic)}


# ----------------------------------------------------------------------------- probe data

RATE_EDGES = (150, 200)  # wpm: slow < 150 <= normal <= 200 < fast


def windows(codes: torch.Tensor, w: int, pad: int) -> torch.Tensor:
    """(N,) codes -> (N, 2w + 1) codes of the tokens t - w .. t + w (``pad`` outside the clip)."""
    padded = F.pad(codes, (w, w), value=pad)
    return padded.unfold(0, 2 * w + 1, 1)


def token_rows(utts: list[Utterance], stream: str, w: int, k: int, f0_edges: tuple[float, float]) -> dict:
    """Probe inputs and labels for every token of ``stream`` ("linguistic" or "semantic").

    Returns dict(x (R, 2w+1) codes, phoneme (R,), pitch (R,), voice (list of str), rate (R,),
    in_speech (R,) bool: token centre within the aligned phoneme span).
    """
    hop_slots = 3 if stream == "linguistic" else 2  # 20 ms slots per token
    xs, ph, pitch, voice, rate, inside = [], [], [], [], [], []
    for u in utts:
        c = getattr(u, stream)
        n = len(c)
        centre = (torch.arange(n) * hop_slots + hop_slots // 2).clamp(max=max(len(u.slots) - 1, 0))
        xs.append(windows(c, w, k))
        ph.append(u.slots[centre] if len(u.slots) else torch.zeros(n, dtype=torch.long))
        inside.append((centre >= u.span[0]) & (centre <= u.span[1]))
        p = 0 if not u.f0 > f0_edges[0] else (1 if u.f0 <= f0_edges[1] else 2)
        pitch.append(torch.full((n,), p))
        rate.append(torch.full((n,), 0 if u.rate < RATE_EDGES[0] else (1 if u.rate <= RATE_EDGES[1] else 2)))
        voice += [u.voice] * n
    return dict(x=torch.cat(xs), phoneme=torch.cat(ph), pitch=torch.cat(pitch), voice=voice,
                rate=torch.cat(rate), in_speech=torch.cat(inside))


class LinearProbe(nn.Module):
    """Logistic regression on one-hot codes in a window: logits = b + sum_j W_j[code_{t+j}]."""

    def __init__(self, n_codes: int, width: int, n_classes: int):
        super().__init__()
        self.n_codes = n_codes + 1  # + the padding code
        self.table = nn.EmbeddingBag(width * self.n_codes, n_classes, mode="sum")
        nn.init.zeros_(self.table.weight)
        self.bias = nn.Parameter(torch.zeros(n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (R, width) codes -> (R, n_classes) logits."""
        offs = torch.arange(x.shape[1]) * self.n_codes
        return self.table(x + offs) + self.bias


def fit_probe(x: torch.Tensor, y: torch.Tensor, n_codes: int, n_classes: int, steps: int = 300,
              lr: float = 0.1, l2: float = 1e-5, seed: int = 0) -> LinearProbe:
    """Full-batch Adam on the cross-entropy plus an L2 penalty. x: (R, width), y: (R,)."""
    torch.manual_seed(seed)
    probe = LinearProbe(n_codes, x.shape[1], n_classes)
    opt = torch.optim.Adam(probe.parameters(), lr=lr)
    for _ in range(steps):
        loss = F.cross_entropy(probe(x), y) + l2 * probe.table.weight.pow(2).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return probe


def probe_table(train: list[Utterance], test: list[Utterance], tok, windows_: dict | None = None,
                steps: int = 300, streams=("linguistic", "semantic"),
                targets=("phoneme", "pitch", "voice", "rate")) -> dict:
    """The complementarity table: test accuracy of linear probes from each stream's codes.

    ``windows_`` = context half-width per stream (default linguistic 2 = 300 ms of tokens,
    semantic 3 = 280 ms). Voice is evaluated on seen voices only (the probe cannot name an
    unseen voice). Returns {target: {"linguistic": acc, "semantic": acc, "linguistic_majority": acc,
    "semantic_majority": acc}} (majority = always guessing the most frequent training class).
    """
    windows_ = windows_ or {"linguistic": 2, "semantic": 3}
    f0s = torch.tensor([u.f0 for u in train if u.f0 == u.f0])
    edges = tuple(torch.quantile(f0s, torch.tensor([1 / 3, 2 / 3])).tolist())
    voices = sorted({u.voice for u in train})
    n_ph = len(tok.linguistic.inventory)
    table: dict = {}
    with torch_threads(1):
        for stream in streams:
            k = tok.vocab.n_linguistic if stream == "linguistic" else tok.vocab.n_semantic
            tr, te = (token_rows(u, stream, windows_[stream], k, edges) for u in (train, test))
            n_classes = {"phoneme": n_ph, "pitch": 3, "voice": len(voices), "rate": 3}
            for target, n_cls in ((t, n_classes[t]) for t in targets):
                if target == "voice":
                    ytr = torch.tensor([voices.index(v) for v in tr["voice"]])
                    keep_te = torch.tensor([v in voices for v in te["voice"]])
                    yte = torch.tensor([voices.index(v) if v in voices else 0 for v in te["voice"]])
                    mtr, mte = torch.ones(len(ytr), dtype=torch.bool), keep_te
                else:
                    ytr, yte = tr[target], te[target]
                    mtr, mte = (tr["in_speech"], te["in_speech"]) if target == "phoneme" else \
                        (torch.ones(len(ytr), dtype=torch.bool), torch.ones(len(yte), dtype=torch.bool))
                probe = fit_probe(tr["x"][mtr], ytr[mtr], k, n_cls, steps=steps)
                with torch.no_grad():
                    acc = (probe(te["x"][mte]).argmax(1) == yte[mte]).float().mean().item()
                row = table.setdefault(target, {})
                row[stream] = acc
                majority = torch.bincount(ytr[mtr], minlength=n_cls).argmax()
                row[f"{stream}_majority"] = (yte[mte] == majority).float().mean().item()
    return table


def format_table(table: dict) -> str:
    """The probe table as aligned text."""
    lines = [f"{'target':<10}{'linguistic':>12}{'semantic':>12}{'majority (L / S)':>20}"]
    for target, row in table.items():
        maj = f"{row['linguistic_majority']:.3f} / {row['semantic_majority']:.3f}"
        lines.append(f"{target:<10}{row['linguistic']:>12.3f}{row['semantic']:>12.3f}{maj:>20}")
    return "\n".join(lines)

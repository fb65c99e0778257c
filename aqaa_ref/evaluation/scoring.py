"""The toy StepEval's scores: one spoken answer judged from its audio, and many aggregated.

The judges are :class:`aqaa_ref.evaluation.judges.Judges` (a recognizer, voice and language
classifiers). Per answer (:func:`judge_answer`), with ``ref`` = the item's reference rendering
(its segments concatenated) and ``hyp`` = the recognizer's phonemes of the answer audio
(an :class:`AnswerRecord`: the item, the answer audio (T,) at 16 kHz, the text channel):

=============== ==============================================================================
correct         1 if min(PER(ref phonemes, hyp), PER(recognizer(ref audio), hyp)) <= 0.35, else 0:
                the expected answer as eSpeak wrote it or as the judge hears the reference.
per             raw PER(ref phonemes, hyp) (unbounded; 0 = perfect)
text_per        text-audio alignment: PER(phonemes of the model's own text channel, hyp)
                (NaN for audio-only answers)
rate_ratio      trimmed answer seconds / trimmed reference seconds (1.0 = the requested rate);
                rate_ok = 1 if it lies within [1/1.2, 1.2]
f0_ratio        median F0 of the answer / of the reference (1.0 = the requested pitch);
                f0_ok = 1 if within [1/1.1, 1.1] (1.65 semitones)
voice_ok        1 if the voice classifier predicts the requested voice (``item.answer[0].voice``)
language_ok     1 if the language classifier predicts the item's language
mel_l1          log-mel L1 (nats per bin per frame) after DTW alignment of the peak-normalised,
                trimmed answer and reference (symmetric steps, divided by n + m frames)
ref_per         the judge's floor: PER(ref phonemes, recognizer(reference audio))
=============== ==============================================================================

Raw measurements ride along (``seconds``, ``f0_hz``, ``n_ref_phonemes``, ...) for
:func:`style_contrasts`. Silent or empty answers score 0 everywhere (mel_l1, f0_ratio NaN).
:func:`evaluate` scores many answers into an :class:`EvalResult` (tables by family and by condition).

Calibration (toy judges on the toy test split, :func:`calibrate_correctness`): a reference
rendering answering its own item is accepted 99.7 % (84.9 % against the eSpeak phonemes alone:
the judge's floor, lost mostly on Chinese and Japanese monosyllables), another rendering of the
same answer text 97.8 %, the reference answer of another item of the same family and language
0.37 % (near-minimal pairs such as "seven"/"eleven" differ by one phoneme in three). Those wrong
answers score mel_l1 about 2.5; the reference itself scores 0.

    >>> judges = Judges.load_or_train(corpus, "toy")
    >>> res = evaluate([AnswerRecord(item, wav, text) for ...], judges, corpus)
    >>> print(res.table()); aqaa_ref.viz.radar_plot({"sft": res, "dpo": res2})
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from tqdm.auto import tqdm

from aqaa_ref.audio import MelConfig, log_mel, median_f0, peak_normalize, trim_silence
from aqaa_ref.data import Item, assistant, phoneme_tokens
from aqaa_ref.evaluation.recognizer import per
from aqaa_ref.metrics import wilson_interval

if TYPE_CHECKING:   # judges.py imports this module (judge_mel, correctness); annotations only here
    from aqaa_ref.evaluation.judges import Judges

SR = 16_000
#: the mel the audio-quality distance is measured on: 80 bins, n_fft 1024, 10 ms hop, to 8 kHz
#: (the judge's own; the same numbers as the vocoder's mel, so the distance is in its units)
JUDGE_MEL = MelConfig(sample_rate=SR, n_fft=1024, hop_length=160, n_mels=80, f_min=0.0, f_max=8000.0)


def judge_mel(wav: torch.Tensor) -> torch.Tensor:
    """(T,) at 16 kHz -> (80, T // 160) log-mel (frames * hop == samples)."""
    return log_mel(wav, cfg=JUDGE_MEL, framing="exact")

#: the table's columns, in order; all in [0, 1] except per, text_per, mel_l1, ref_per
DIMENSIONS = ("correct", "per", "text_per", "rate_ok", "f0_ok", "voice_ok", "language_ok", "mel_l1", "ref_per")
RADAR_DIMENSIONS = ("correct", "rate_ok", "f0_ok", "voice_ok", "language_ok")
#: the dimensions that are 0 or 1 per answer: their means are rates, with binomial intervals
RATES = RADAR_DIMENSIONS


@dataclass
class AnswerRecord:
    """One answered question: the corpus item, the answer audio (T,) at 16 kHz, the text channel
    (and the generated ids, when a model answered)."""

    item: Item
    wav: torch.Tensor
    text: str = ""
    ids: list[int] | None = None    # the generated answer ids, when a model answered (for the waterfall)


def _check(rec) -> None:
    if not isinstance(rec, AnswerRecord):
        raise ValueError(f"expected an AnswerRecord, got {type(rec).__name__}")
    if not isinstance(rec.wav, torch.Tensor):
        raise ValueError(f"AnswerRecord.wav must be a torch.Tensor, got {type(rec.wav).__name__}")
    if rec.wav.dim() != 1 or not rec.wav.is_floating_point():
        raise ValueError(f"AnswerRecord.wav must be a 1-D float tensor (T,) at 16 kHz, "
                         f"got shape {tuple(rec.wav.shape)} {rec.wav.dtype}")
    if not bool(torch.isfinite(rec.wav).all()):
        raise ValueError("AnswerRecord.wav contains NaN or infinite samples")


def measure(rec: AnswerRecord) -> dict:
    """Signal measurements that need no judge: trimmed seconds, median F0 (Hz), reference phoneme count."""
    _check(rec)
    trimmed = trim_silence(rec.wav.float())
    return dict(id=rec.item.id, family=rec.item.family, condition=rec.item.condition, style=rec.item.style,
                language=rec.item.language, seconds=trimmed.numel() / SR,
                f0_hz=median_f0(trimmed, SR) if trimmed.numel() else math.nan,
                n_ref_phonemes=len(phoneme_tokens(" ".join(r.phonemes for r in rec.item.answer_audio))))


def dtw_mel_l1(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean |log-mel difference| along the best DTW path. a: (n_mels, n), b: (n_mels, m).

    Symmetric steps: D[i,j] = min(D[i-1,j] + c, D[i,j-1] + c, D[i-1,j-1] + 2c), c = mean_bins |a_i - b_j|;
    D[n,m] / (n + m) is a per-frame average (0 for identical inputs)."""
    c = (torch.cdist(a.T.double(), b.T.double(), p=1) / a.shape[0]).numpy()   # (n, m)
    n, m = c.shape
    D = np.full(m, np.inf)
    for i in range(n):
        S = np.cumsum(c[i])                                                   # horizontal run costs
        prev_diag = np.concatenate([[0.0 if i == 0 else np.inf], D[:-1]])
        cand = np.minimum(D + c[i], prev_diag + 2 * c[i])                     # from above / diagonal
        # horizontal moves: D[i,j] = min_k<=j cand[k] + S[j] - S[k], a prefix minimum
        D = S + np.minimum.accumulate(cand - S)
    return float(D[-1] / (n + m))


def correctness(ref: dict, hyp: list[str], threshold: float) -> float:
    """1.0 if ``hyp`` matches the reference as written (ref["tokens"]) or as the judge hears it
    (ref["hyp"], when it heard anything) within PER ``threshold``; else 0.0."""
    return float(min(per(ref["tokens"], hyp), per(ref["hyp"], hyp) if ref["hyp"] else 1.0) <= threshold)


def calibrate_correctness(judges: Judges, corpus, split: str = "test") -> dict:
    """How the threshold separates right from wrong answers on ground truth: accept rates of each
    item's reference audio as the answer to itself (``reference_strict``: vs the eSpeak phonemes
    only, the judge's floor), to items of the same family and language with the same answer text
    (another rendering of the right answer) and with a different one (a wrong answer)."""
    items = corpus.split(split)
    refs = [judges.reference(it, corpus) for it in items]
    th = judges.cfg.correct_threshold
    same, other = [], []
    for i, a in enumerate(items):
        for j, b in enumerate(items):
            if i != j and a.family == b.family and a.language == b.language:
                if a.answer_text != b.answer_text:
                    other.append(correctness(refs[i], refs[j]["hyp"], th))
                elif a.answer_audio != b.answer_audio:
                    same.append(correctness(refs[i], refs[j]["hyp"], th))
    return dict(reference=_nanmean([correctness(r, r["hyp"], th) for r in refs]),
                reference_strict=_nanmean([float(per(r["tokens"], r["hyp"]) <= th) for r in refs]),
                same_answer_other_rendering=_nanmean(same), other_answer=_nanmean(other),
                pairs_same=len(same), pairs_other=len(other))


def hear(wav: torch.Tensor, item: Item, judges: Judges, corpus) -> tuple[list[str], float]:
    """The recognizer's phonemes of an answer (none when it is silent) and whether they are
    ``item``'s expected answer (:func:`correctness`): the ``correct`` of :func:`judge_answer`."""
    wav = wav.float()
    silent = trim_silence(wav).numel() < judges.cfg.silence_seconds * SR
    hyp = [] if silent else judges.recognizer.transcribe(wav, SR)
    return hyp, correctness(judges.reference(item, corpus), hyp, judges.cfg.correct_threshold)


def judge_answer(rec: AnswerRecord, judges: Judges, corpus) -> dict:
    """Every dimension of one answer (see the module docstring), plus the raw measurements."""
    cfg, out = judges.cfg, measure(rec)
    ref = judges.reference(rec.item, corpus)
    wav = rec.wav.float()
    trimmed = trim_silence(wav)
    silent = trimmed.numel() < cfg.silence_seconds * SR
    hyp, out["correct"] = hear(wav, rec.item, judges, corpus)
    out.update(per=per(ref["tokens"], hyp), ref_per=per(ref["tokens"], ref["hyp"]), hyp=" ".join(hyp),
               phonemes_per_second=len(hyp) / out["seconds"] if out["seconds"] else 0.0)
    if rec.text.strip():  # the model's own text channel, as eSpeak says it in the item's language
        out["text_per"] = per(phoneme_tokens(assistant(rec.text, rec.item.language).synthesize()[2]), hyp)
    else:
        out["text_per"] = math.nan
    out["rate_ratio"] = out["seconds"] / ref["seconds"] if ref["seconds"] else math.nan
    out["f0_ratio"] = out["f0_hz"] / ref["f0"]
    within = lambda r, tol: float(1 / tol <= r <= tol) if not math.isnan(r) else 0.0  # noqa: E731
    out["rate_ok"], out["f0_ok"] = within(out["rate_ratio"], cfg.rate_tolerance), within(out["f0_ratio"], cfg.f0_tolerance)
    voice, lang = (None, None) if silent else judges.classify(wav)
    out.update(voice=voice, voice_ok=float(voice == rec.item.answer[0].voice),
               language_pred=lang, language_ok=float(lang == rec.item.language))
    out["mel_l1"] = math.nan if silent else dtw_mel_l1(judge_mel(peak_normalize(trimmed)), ref["mel"])
    return out


@dataclass
class EvalResult:
    """Per-answer scores with tables by family and by condition."""

    scores: list[dict]

    def summary(self, by: str = "family") -> dict:
        """{group: {"n": count, dim: mean over answers (NaN ignored)}}, plus an "all" row."""
        return {g: {"n": len(rows), **{d: _nanmean([r[d] for r in rows]) for d in DIMENSIONS}}
                for g, rows in self._groups(by).items()}

    def _groups(self, by: str) -> dict:
        """{group: its score dicts}, groups sorted, then "all"."""
        groups: dict = {}
        for s in self.scores:
            groups.setdefault(s[by], []).append(s)
        return {**dict(sorted(groups.items())), "all": self.scores}

    def table(self, by: str = "family") -> str:
        rows = self.summary(by)
        width = max(len(by), *map(len, rows))
        lines = [f"{by:<{width}}  {'n':>4}  " + "  ".join(f"{d:>11}" for d in DIMENSIONS)]
        for g, r in rows.items():
            lines.append(f"{g:<{width}}  {r['n']:>4}  " + "  ".join(f"{r[d]:>11.3f}" for d in DIMENSIONS))
        return "\n".join(lines)

    def intervals(self, by: str = "family", dims=RATES, z: float = 1.96) -> dict:
        """{group: {dim: (k, n, low, high)}} for 0/1 dimensions: k of the n answers scored 1
        (NaN ignored) and the Wilson interval of k / n (:func:`aqaa_ref.metrics.wilson_interval`,
        95 % at z = 1.96), plus an "all" row. The rate is the table's mean, k / n."""
        out = {}
        for g, rows in self._groups(by).items():
            out[g] = {}
            for d in dims:
                xs = [r[d] for r in rows if r[d] is not None and not math.isnan(r[d])]
                if any(x not in (0.0, 1.0) for x in xs):
                    raise ValueError(f"{d} is not a 0/1 score (got {sorted(set(xs) - {0.0, 1.0})[:3]}): no binomial interval")
                k = int(sum(xs))
                out[g][d] = (k, len(xs), *wilson_interval(k, len(xs), z))
        return out

    def interval_table(self, by: str = "family", dims=("correct",), z: float = 1.96) -> str:
        """Rates with their 95 % intervals: ``k/n  rate [low, high]`` per group and dimension."""
        rows = self.intervals(by, dims, z)
        width = max(len(by), *map(len, rows))
        lines = [f"{by:<{width}}  " + "  ".join(f"{d + ' (95 % interval)':>29}" for d in dims)]
        for g, r in rows.items():
            cells = [f"{k:>3}/{n:<3} {k / n if n else math.nan:.3f} [{lo:.3f}, {hi:.3f}]" for k, n, lo, hi in r.values()]
            lines.append(f"{g:<{width}}  " + "  ".join(f"{c:>29}" for c in cells))
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"by_family": self.summary("family"), "by_condition": self.summary("condition"), "scores": self.scores}


def _nanmean(xs) -> float:
    xs = [x for x in xs if x is not None and not math.isnan(x)]
    return sum(xs) / len(xs) if xs else math.nan


def evaluate(records, judges: Judges, corpus, progress: bool = False) -> EvalResult:
    """Score a list of :class:`AnswerRecord`s -> :class:`EvalResult`."""
    return EvalResult([judge_answer(r, judges, corpus) for r in tqdm(records, desc="scoring", disable=not progress)])


def reference_records(items: list[Item], corpus) -> list[AnswerRecord]:
    """The ground-truth ceiling: each item answered by its own reference audio and text."""
    return [AnswerRecord(it, corpus.answer_wav(it, SR), it.answer_text) for it in items]


def answer_records(aqaa, items: list[Item], table, batch_size: int = 32) -> list[AnswerRecord]:
    """Each item's spoken question (its audio ids from ``table``, an AudioTable) answered in
    speech by ``aqaa`` (an :class:`aqaa_ref.inference.pipeline.AQAA`), batched -> AnswerRecords."""
    prompts = [aqaa.prompt(table.ids(it.question_audio.path), it.instruction, "text+audio") for it in items]
    answers = aqaa.answer_prompts(prompts, batch_size=batch_size)
    return [AnswerRecord(it, a.wav, a.text, a.ids) for it, a in zip(items, answers)]


def style_contrasts(records_or_scores) -> dict:
    """Do slow answers last longer than fast ones, and high answers sound higher than low ones?

    slow_over_fast: mean seconds per reference phoneme of "slow" answers / of "fast" ones
    (per phoneme, so different answer lengths cancel); high_over_low: mean median F0 (Hz) of
    "high" answers / of "low" ones. Accepts AnswerRecords, score dicts or an EvalResult."""
    rows = records_or_scores.scores if isinstance(records_or_scores, EvalResult) else records_or_scores
    rows = [measure(r) if isinstance(r, AnswerRecord) else r for r in rows]
    pace = lambda st: _nanmean([r["seconds"] / max(1, r["n_ref_phonemes"]) for r in rows if r["style"] == st])  # noqa: E731
    pitch = lambda st: _nanmean([r["f0_hz"] for r in rows if r["style"] == st])  # noqa: E731
    count = lambda st: sum(r["style"] == st for r in rows)  # noqa: E731
    return dict(slow_over_fast=pace("slow") / pace("fast"), high_over_low=pitch("high") / pitch("low"),
                counts={st: count(st) for st in ("slow", "fast", "high", "low")})

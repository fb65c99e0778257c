"""The toy StepEval: automatic scores of spoken answers, computed from the answer audio.

StepEval-Audio-360 has people and an LLM judge rate answers per dimension. Here every
test item's answer is checkable, so the judges are small models trained only on the data
engine's ground-truth train audio (:class:`Judges`): the independent CTC recognizer of
:mod:`aqaa_ref.evaluation.recognizer`, and two linear classifiers (voice, language) over utterance
features. Per answer (:func:`score_answer`), with ``ref`` = the item's reference rendering
(its segments concatenated) and ``hyp`` = the recognizer's phonemes of the answer audio:

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

Calibration (toy judges on the toy test split, :func:`calibrate_correctness`): a reference
rendering answering its own item is accepted 99.7 % (84.9 % against the eSpeak phonemes alone:
the judge's floor, lost mostly on Chinese and Japanese monosyllables), another rendering of the
same answer text 97.8 %, the reference answer of another item of the same family and language
0.37 % (near-minimal pairs such as "seven"/"eleven" differ by one phoneme in three). Those wrong
answers score mel_l1 about 2.5; the reference itself scores 0.

    >>> judges = Judges.load_or_train(corpus, "toy")
    >>> res = evaluate([AnswerRecord(item, wav, text) for ...], judges, corpus)
    >>> print(res.table()); radar_plot({"sft": res, "dpo": res2})
"""
from __future__ import annotations

import json
import math
import random
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file
from safetensors.torch import save as safetensors_bytes
from tqdm.auto import tqdm

from aqaa_ref.audio import MelConfig, estimate_f0, log_mel, median_f0, peak_normalize, trim_silence
from aqaa_ref.cache import atomic_write_bytes, atomic_write_json, cache_dir, config_hash
from aqaa_ref.data import Item, assistant, phoneme_tokens
from aqaa_ref.evaluation.recognizer import RecognizerConfig, features, load_or_train_recognizer, pad_batch, per

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


@dataclass(frozen=True)
class JudgesConfig:
    """What the judges are and how answers are scored. Presets: ``tiny`` (tests), ``toy``."""

    name: str = "toy"
    recognizer: RecognizerConfig = field(default_factory=RecognizerConfig)
    max_clips: int | None = 2000   # train-split clips for the voice / language classifiers
    steps: int = 300               # full-batch Adam steps of each classifier
    lr: float = 0.05
    weight_decay: float = 0.01
    balanced: bool = True          # class-weighted loss: a uniform prior (English would dominate)
    seed: int = 0
    # scoring (not part of the cache key)
    correct_threshold: float = 0.35
    rate_tolerance: float = 1.2
    f0_tolerance: float = 1.1
    silence_seconds: float = 0.05  # trimmed answers shorter than this count as silent

    @classmethod
    def from_preset(cls, preset: str, **overrides) -> "JudgesConfig":
        presets = {"tiny": dict(max_clips=None), "toy": dict()}
        if preset not in presets:
            raise ValueError(f"unknown judges preset {preset!r}; known: {sorted(presets)}")
        return cls(**{"name": preset, "recognizer": RecognizerConfig.from_preset(preset), **presets[preset], **overrides})

    def training_key(self) -> dict:
        keys = ("recognizer", "max_clips", "steps", "lr", "weight_decay", "balanced", "seed")
        return {k: v for k, v in asdict(self).items() if k in keys}


# ----------------------------------------------------------------------------- the judges

class LinearClassifier(nn.Module):
    """Multinomial logistic regression on standardised features: (B, D) -> (B, n_classes) logits."""

    def __init__(self, n_features: int, classes: list[str]):
        super().__init__()
        self.classes = list(classes)
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("std", torch.ones(n_features))
        self.linear = nn.Linear(n_features, len(classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear((x - self.mean) / self.std)

    def fit(self, x: torch.Tensor, labels: list[str], cfg: JudgesConfig) -> "LinearClassifier":
        """x: (N, D) features, labels: N class names. Full-batch Adam on (class-weighted) cross-entropy."""
        self.mean.copy_(x.mean(0))
        self.std.copy_(x.std(0).clamp(min=1e-3))
        y = torch.tensor([self.classes.index(c) for c in labels])
        counts = torch.bincount(y, minlength=len(self.classes)).float()
        weight = counts.sum() / (len(self.classes) * counts) if cfg.balanced else None   # (n_classes,)
        opt = torch.optim.Adam(self.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        for _ in range(cfg.steps):
            loss = F.cross_entropy(self(x), y, weight=weight)
            opt.zero_grad()
            loss.backward()
            opt.step()
        return self.eval()

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> list[str]:
        return [self.classes[i] for i in self(x).argmax(-1).tolist()]


class Judges:
    """Everything evaluation needs: the recognizer and the voice / language classifiers."""

    def __init__(self, cfg: JudgesConfig, recognizer, voice: LinearClassifier, language: LinearClassifier):
        self.cfg, self.recognizer, self.voice, self.language = cfg, recognizer, voice, language
        self._refs: dict = {}  # (corpus root, item id) -> reference measurements (see reference())

    @torch.no_grad()
    def utterance_features(self, wav: torch.Tensor) -> torch.Tensor:
        """(T,) 16 kHz -> (2 * n_mels + 3 + V,): mean and std of log-mel, log median F0, F0 spread,
        voiced fraction, and the recognizer's mean CTC posterior per class (a phoneme histogram)."""
        wav = trim_silence(peak_normalize(wav))
        if wav.numel() < self.recognizer.cfg.mel.n_fft:
            wav = torch.zeros(self.recognizer.cfg.mel.n_fft)
        mel = log_mel(wav, SR, self.recognizer.cfg.mel)                      # (n_mels, F)
        f0 = estimate_f0(wav, SR)
        voiced = f0[f0 > 0].log()
        pitch = [float(voiced.median()) if voiced.numel() else 0.0, float(voiced.std()) if voiced.numel() > 1 else 0.0,
                 voiced.numel() / max(1, f0.numel())]
        x, mask = pad_batch([features(wav, self.recognizer.cfg)])
        post = self.recognizer.model(x, mask)[0].exp().mean(0)               # (V,)
        return torch.cat([mel.mean(1), mel.std(1), torch.tensor(pitch), post])

    def classify(self, wav: torch.Tensor) -> tuple[str, str]:
        """(T,) 16 kHz -> (predicted voice, predicted language)."""
        x = self.utterance_features(wav)[None]
        return self.voice.predict(x)[0], self.language.predict(x)[0]

    def reference(self, item: Item, corpus) -> dict:
        """The item's reference rendering, measured once: tokens, judge's transcript, seconds, F0, mel."""
        key = (str(corpus.root), item.id)
        if key not in self._refs:
            wav = corpus.answer_wav(item, SR)
            trimmed = trim_silence(wav)
            self._refs[key] = dict(tokens=phoneme_tokens(" ".join(r.phonemes for r in item.answer_audio)),
                                       hyp=self.recognizer.transcribe(wav, SR), seconds=trimmed.numel() / SR,
                                       f0=median_f0(trimmed, SR), mel=judge_mel(peak_normalize(trimmed)))
        return self._refs[key]

    @classmethod
    def load_or_train(cls, corpus, preset: str = "toy", progress: bool = True, **overrides) -> "Judges":
        """Cached under cache_dir()/judges/<hash(training config, corpus config)>; trained on a miss."""
        cfg = JudgesConfig.from_preset(preset, **overrides)
        recognizer = load_or_train_recognizer(corpus, cfg.recognizer, progress)
        folder = cache_dir() / "judges" / config_hash(cfg.training_key(), corpus.config)
        if (folder / "config.json").exists():
            meta, state = json.loads((folder / "config.json").read_text()), load_file(str(folder / "classifiers.safetensors"))
            heads = {k: LinearClassifier(meta["n_features"], meta[k]) for k in ("voice", "language")}
            for k, head in heads.items():
                head.load_state_dict({n[len(k) + 1:]: v for n, v in state.items() if n.startswith(k + ".")})
            return cls(cfg, recognizer, heads["voice"].eval(), heads["language"].eval())
        judges = train_judges(corpus, cfg, recognizer, progress)
        state = {f"{k}.{n}": v.contiguous() for k in ("voice", "language") for n, v in getattr(judges, k).state_dict().items()}
        atomic_write_bytes(folder / "classifiers.safetensors", safetensors_bytes(state))
        atomic_write_json(folder / "config.json", {"config": cfg.training_key(), "n_features": judges.voice.mean.numel(),
                                                   "voice": judges.voice.classes, "language": judges.language.classes})
        return judges


def train_judges(corpus, cfg: JudgesConfig, recognizer, progress: bool = True) -> Judges:
    """Fit the voice and language classifiers on (up to max_clips) ground-truth train clips."""
    torch.manual_seed(cfg.seed)
    clips = corpus.utterances("train")
    random.Random(cfg.seed).shuffle(clips)
    clips = clips[: cfg.max_clips] if cfg.max_clips else clips
    judges = Judges(cfg, recognizer, None, None)
    x = torch.stack([judges.utterance_features(corpus.load(r, SR))
                     for _, r in tqdm(clips, desc="judge features", disable=not progress, leave=False)])
    for name in ("voice", "language"):
        labels = [getattr(sp, name) for sp, _ in clips]
        setattr(judges, name, LinearClassifier(x.shape[1], sorted(set(labels))).fit(x, labels, cfg))
    return judges


def classifier_accuracy(judges: Judges, corpus, split: str = "test") -> dict:
    """Held-out accuracy of the voice / language classifiers on a split's ground-truth clips
    (questions and answers), beside the majority-class baseline on the same clips. Clips whose
    label the classifier never saw (the unseen test voice) are left out and counted."""
    clips = corpus.utterances(split)
    preds = [judges.classify(corpus.load(r, SR)) for _, r in clips]
    out = {}
    for k, (name, head) in enumerate((("voice", judges.voice), ("language", judges.language))):
        pairs = [(getattr(sp, name), p[k]) for (sp, _), p in zip(clips, preds) if getattr(sp, name) in head.classes]
        truth = [t for t, _ in pairs]
        majority = max(set(truth), key=truth.count)
        out[name] = dict(accuracy=sum(t == p for t, p in pairs) / len(pairs), majority=truth.count(majority) / len(pairs),
                         majority_class=majority, clips=len(pairs), unseen_labels=len(clips) - len(pairs))
    return out


# ----------------------------------------------------------------------------- scoring

@dataclass
class AnswerRecord:
    """One answered question: the corpus item, the answer audio (T,) at 16 kHz, the text channel."""

    item: Item
    wav: torch.Tensor
    text: str = ""


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


def score_answer(rec: AnswerRecord, judges: Judges, corpus) -> dict:
    """Every dimension of one answer (see the module docstring), plus the raw measurements."""
    cfg, out = judges.cfg, measure(rec)
    ref = judges.reference(rec.item, corpus)
    wav = rec.wav.float()
    trimmed = trim_silence(wav)
    silent = trimmed.numel() < cfg.silence_seconds * SR
    hyp = [] if silent else judges.recognizer.transcribe(wav, SR)
    out.update(per=per(ref["tokens"], hyp), ref_per=per(ref["tokens"], ref["hyp"]), hyp=" ".join(hyp),
               phonemes_per_second=len(hyp) / out["seconds"] if out["seconds"] else 0.0)
    out["correct"] = correctness(ref, hyp, cfg.correct_threshold)
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
        groups: dict = {}
        for s in self.scores:
            groups.setdefault(s[by], []).append(s)
        groups = {**dict(sorted(groups.items())), "all": self.scores}
        return {g: {"n": len(rows), **{d: _nanmean([r[d] for r in rows]) for d in DIMENSIONS}} for g, rows in groups.items()}

    def table(self, by: str = "family") -> str:
        rows = self.summary(by)
        width = max(len(by), *map(len, rows))
        lines = [f"{by:<{width}}  {'n':>4}  " + "  ".join(f"{d:>11}" for d in DIMENSIONS)]
        for g, r in rows.items():
            lines.append(f"{g:<{width}}  {r['n']:>4}  " + "  ".join(f"{r[d]:>11.3f}" for d in DIMENSIONS))
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"by_family": self.summary("family"), "by_condition": self.summary("condition"), "scores": self.scores}


def _nanmean(xs) -> float:
    xs = [x for x in xs if x is not None and not math.isnan(x)]
    return sum(xs) / len(xs) if xs else math.nan


def evaluate(records, judges: Judges, corpus, progress: bool = False) -> EvalResult:
    """Score a list of :class:`AnswerRecord`s -> :class:`EvalResult`."""
    return EvalResult([score_answer(r, judges, corpus) for r in tqdm(records, desc="scoring", disable=not progress)])


def reference_records(items: list[Item], corpus) -> list[AnswerRecord]:
    """The ground-truth ceiling: each item answered by its own reference audio and text."""
    return [AnswerRecord(it, corpus.answer_wav(it, SR), it.answer_text) for it in items]


def answer_records(aqaa, items: list[Item], table, batch_size: int = 32) -> list[AnswerRecord]:
    """Each item's spoken question (its audio ids from ``table``, an AudioTable) answered in
    speech by ``aqaa`` (an :class:`aqaa_ref.inference.pipeline.AQAA`), batched -> AnswerRecords."""
    prompts = [aqaa.prompt(table.ids(it.question_audio.path), it.instruction, "text+audio") for it in items]
    answers = aqaa.answer_prompts(prompts, batch_size=batch_size)
    return [AnswerRecord(it, a.wav, a.text) for it, a in zip(items, answers)]


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


def radar_plot(results, dimension: str | None = "correct", ax=None):
    """StepEval-style radar: one axis per family showing ``dimension`` (or, with dimension=None,
    one axis per [0, 1] dimension over all answers), one polygon per model. -> the polar axis."""
    import matplotlib.pyplot as plt

    results = results if isinstance(results, dict) else {"model": results}
    first = next(iter(results.values())).summary()
    labels = [g for g in first if g != "all"] if dimension else list(RADAR_DIMENSIONS)
    angles = [2 * math.pi * k / len(labels) for k in range(len(labels))]
    if ax is None:
        ax = plt.figure(figsize=(6, 6)).add_subplot(projection="polar")
    for name, res in results.items():
        summ = res.summary()
        vals = [summ.get(g, {}).get(dimension, math.nan) for g in labels] if dimension else [summ["all"][d] for d in labels]
        vals = [0.0 if math.isnan(v) else v for v in vals]
        ax.plot(angles + angles[:1], vals + vals[:1], label=name)
        ax.fill(angles + angles[:1], vals + vals[:1], alpha=0.15)
    ax.set_xticks(angles)
    ax.set_xticklabels([g.replace("_", "\n") for g in labels], fontsize=8)
    ax.set_ylim(0, 1 if dimension in (None, *RADAR_DIMENSIONS) else None)
    ax.set_title(f"toy StepEval: {dimension or 'dimensions'}")
    ax.legend(loc="upper right", bbox_to_anchor=(1.3, 1.1), fontsize=8)
    return ax


def sample_judge(preset: str = "toy"):
    """For ``python -m aqaa_ref demo``: judge(wav, sample_row) -> True when the recognizer hears
    the row's expected answer (``answer``, ``answer_language``) in ``wav`` (T,) at 16 kHz."""
    from aqaa_ref.audio import resample
    from aqaa_ref.data import CorpusConfig, build_corpus

    cfg = JudgesConfig.from_preset(preset)
    rec = load_or_train_recognizer(build_corpus(CorpusConfig.from_preset(preset), progress=False), cfg.recognizer)

    def judge(wav: torch.Tensor, row: dict) -> bool:
        ref_wav, sr, phon = assistant(row["answer"], row["answer_language"]).synthesize()
        ref = dict(tokens=phoneme_tokens(phon), hyp=rec.transcribe(resample(torch.from_numpy(ref_wav), sr, SR), SR))
        hyp = rec.transcribe(wav, SR) if trim_silence(wav).numel() >= cfg.silence_seconds * SR else []
        return bool(correctness(ref, hyp, cfg.correct_threshold))
    return judge

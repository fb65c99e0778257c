"""The toy StepEval's judges: small models that hear spoken answers, trained on ground truth.

StepEval-Audio-360 has people and an LLM judge rate answers per dimension. Here every
test item's answer is checkable, so the judges are small models trained only on the data
engine's ground-truth train audio (:class:`Judges`): the independent CTC recognizer of
:mod:`aqaa_ref.evaluation.recognizer`, and two linear classifiers (voice, language) over utterance
features (:meth:`Judges.utterance_features`: (T,) at 16 kHz -> (2 * n_mels + 3 + V,)). How they
score an answer is :mod:`aqaa_ref.evaluation.scoring`; :func:`classifier_accuracy` judges the
classifiers themselves on held-out ground truth.

    >>> judges = Judges.load_or_train(corpus, "toy")     # cached; trained on a miss
    >>> judges.classify(wav)                              # (T,) 16 kHz -> ("f1", "en")
    >>> classifier_accuracy(judges, corpus, "test")["voice"]["accuracy"]
"""
from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file
from safetensors.torch import save as safetensors_bytes
from tqdm.auto import tqdm

from aqaa_ref.audio import estimate_f0, log_mel, median_f0, peak_normalize, trim_silence
from aqaa_ref.cache import atomic_write_bytes, atomic_write_json, cache_dir, config_hash
from aqaa_ref.data import Item, assistant, phoneme_tokens
from aqaa_ref.evaluation.recognizer import RecognizerConfig, features, load_or_train_recognizer, pad_batch
from aqaa_ref.evaluation.scoring import SR, correctness, judge_mel
from aqaa_ref import presets


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
        kw = presets.preset("judges", preset)
        return cls(**{"name": preset, "recognizer": RecognizerConfig.from_preset(preset), **kw, **overrides})

    def training_key(self) -> dict:
        keys = ("recognizer", "max_clips", "steps", "lr", "weight_decay", "balanced", "seed")
        return {k: v for k, v in asdict(self).items() if k in keys}


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
        folder = judges_dir(corpus, cfg)
        if (folder / "config.json").exists():
            return judges_from_state(cfg, recognizer, json.loads((folder / "config.json").read_text()),
                                     load_file(str(folder / "classifiers.safetensors")))
        judges = train_judges(corpus, cfg, recognizer, progress)
        state = {f"{k}.{n}": v.contiguous() for k in ("voice", "language") for n, v in getattr(judges, k).state_dict().items()}
        atomic_write_bytes(folder / "classifiers.safetensors", safetensors_bytes(state))
        atomic_write_json(folder / "config.json", {"config": cfg.training_key(), "n_features": judges.voice.mean.numel(),
                                                   "voice": judges.voice.classes, "language": judges.language.classes})
        return judges


def judges_dir(corpus, cfg: JudgesConfig):
    """The cache folder of the voice / language classifiers trained with ``cfg`` on ``corpus``."""
    return cache_dir() / "judges" / config_hash(cfg.training_key(), corpus.config)


def judges_from_state(cfg: JudgesConfig, recognizer, meta: dict, state: dict) -> Judges:
    """Judges from a recognizer and the classifiers' saved config.json contents and weights."""
    heads = {k: LinearClassifier(meta["n_features"], meta[k]) for k in ("voice", "language")}
    for k, head in heads.items():
        head.load_state_dict({n[len(k) + 1:]: v for n, v in state.items() if n.startswith(k + ".")})
    return Judges(cfg, recognizer, heads["voice"].eval(), heads["language"].eval())


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


def sample_judge(preset: str = "toy", recognizer=None):
    """For ``python -m aqaa_ref demo``: judge(wav, sample_row) -> True when the recognizer hears
    the row's expected answer (``answer``, ``answer_language``) in ``wav`` (T,) at 16 kHz.
    ``recognizer``: a loaded one (the shipped checkpoints'); default: the preset's, trained or cached."""
    from aqaa_ref.audio import resample
    from aqaa_ref.data import CorpusConfig, build_corpus

    cfg = JudgesConfig.from_preset(preset)
    rec = recognizer or load_or_train_recognizer(build_corpus(CorpusConfig.from_preset(preset), progress=False),
                                                 cfg.recognizer)

    def judge(wav: torch.Tensor, row: dict) -> bool:
        ref_wav, sr, phon = assistant(row["answer"], row["answer_language"]).synthesize()
        ref = dict(tokens=phoneme_tokens(phon), hyp=rec.transcribe(resample(torch.from_numpy(ref_wav), sr, SR), SR))
        hyp = rec.transcribe(wav, SR) if trim_silence(wav).numel() >= cfg.silence_seconds * SR else []
        return bool(correctness(ref, hyp, cfg.correct_threshold))
    return judge

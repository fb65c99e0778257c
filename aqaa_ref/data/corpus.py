"""The corpus builder: items from the task families, rendered to audio, split, cached.

    >>> corpus = build_corpus(CorpusConfig.from_preset("toy"))   # about 30 s the first time
    >>> corpus.split("train")[0].question.text
    >>> wav = corpus.load(corpus.split("train")[0].question_audio)  # (T,) float32 at 16 kHz

Splits are built to measure generalisation:

* ``train`` and ``val``: seen voices, rates and pitches from the training grids, facts
  not held out;
* ``test``, each item tagged with a ``condition``: ``seen`` (new renderings of training
  facts), ``unseen_voice`` (a voice never heard in training), ``unseen_prosody`` (rates
  and pitches outside the training grids), ``unseen_fact`` (operand pairs and word pairs
  that never appear in training, in any language).

No question rendering appears in two splits. Everything is deterministic from the seed.
Audio is cached on disk (16-bit WAV, one file per distinct rendering, named by a hash of
its settings) and the manifest is written last, atomically: an interrupted build leaves
only complete files, which the next build reuses.
"""
from __future__ import annotations

import json
import random
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
from tqdm.auto import tqdm

from aqaa_ref import presets
from aqaa_ref.audio import load_audio, resample, save_audio
from aqaa_ref.cache import atomic_write_json, atomic_write_text, cache_dir, config_hash
from aqaa_ref.data.styles import Speech
from aqaa_ref.data.tasks import (HELDOUT_FAMILIES, PHRASING_MODES, VOICE_MODES, Item, Rendering, TaskContext,
                                 heldout_facts, make_item)

CONDITIONS = ("seen", "unseen_voice", "unseen_prosody", "unseen_fact")

#: training items per family, before ``scale``
TOY_FAMILY_COUNTS = {
    "logical_reasoning": 1500,
    "language_ability": 800,
    "voice_instruction_following": 700,
    "speech_emotion_control": 350,
    "role_playing": 350,
    "voice_understanding": 400,
    "gaming": 400,
}


@dataclass(frozen=True)
class CorpusConfig:
    """Everything that determines a corpus. Presets: ``tiny`` (tests), ``toy``, ``large``."""

    #: added after corpora were cached: at these values they stay out of the cache key
    __key_defaults__ = {"phrasing": "one", "voices": "seven"}

    name: str = "toy"
    seed: int = 0
    family_counts: dict = field(default_factory=lambda: dict(TOY_FAMILY_COUNTS))
    scale: float = 1.0  # multiplies family_counts
    val_per_family: int = 20
    test_per_family_condition: int = 12  # per family x condition (where the condition applies)
    heldout_fraction: float = 0.15  # share of operand / word pairs never seen in training
    max_operand: int = 9
    text_instruction_prob: float = 0.25  # instruction as text beside the audio, not spoken
    sample_rate: int = 16_000
    workers: int = 2
    # "one": one wording per task and language (aqaa_ref.data.tasks.TEMPLATES); "varied": several
    # (tasks.PHRASINGS), some held out for a fifth test condition, "unseen_phrasing"
    phrasing: str = "one"
    # "seven": the seven training voices and one held-out voice (m4); "many": twelve training
    # voices and five held-out ones (aqaa_ref.data.styles.MANY_*)
    voices: str = "seven"

    def __post_init__(self):
        if self.phrasing not in PHRASING_MODES:
            raise ValueError(f"phrasing must be one of {PHRASING_MODES}, got {self.phrasing!r}")
        if self.voices not in VOICE_MODES:
            raise ValueError(f"voices must be one of {VOICE_MODES}, got {self.voices!r}")

    @property
    def conditions(self) -> tuple:
        """The test split's conditions: CONDITIONS, plus ``unseen_phrasing`` when phrasing is varied."""
        return CONDITIONS + (("unseen_phrasing",) if self.phrasing == "varied" else ())

    @classmethod
    def from_preset(cls, preset: str, **overrides) -> "CorpusConfig":
        return cls(**{"name": preset, **presets.preset("corpus", preset), **overrides})

    def train_counts(self) -> dict:
        return {f: max(1, round(n * self.scale)) for f, n in self.family_counts.items()}


# ----------------------------------------------------------------------------- planning

def plan_items(cfg: CorpusConfig) -> list[Item]:
    """All items of all splits, with ids, before any audio exists. Deterministic in ``cfg``."""
    rng = random.Random(cfg.seed)
    heldout = heldout_facts(random.Random(cfg.seed + 1), cfg.heldout_fraction, cfg.max_operand)
    used: set = set()  # question renderings (+ text instruction) already taken by some split
    items: list[Item] = []

    def draw(family: str, split: str, condition: str, n: int):
        ctx = TaskContext(condition=condition, heldout=heldout, max_operand=cfg.max_operand,
                          text_instruction_prob=cfg.text_instruction_prob, phrasing=cfg.phrasing, voices=cfg.voices)
        made, tries = 0, 0
        while made < n and tries < 50 * n:
            tries += 1
            item = make_item(family, rng, ctx)
            key = (item.question.key(), item.instruction)
            if key in used:
                continue
            used.add(key)
            items.append(replace(item, id=f"{split}-{family}-{made:05d}" + ("" if condition == "seen" else f"-{condition}"),
                                 split=split))
            made += 1

    for family, n in cfg.train_counts().items():
        draw(family, "train", "seen", n)
    for family in cfg.family_counts:
        draw(family, "val", "seen", cfg.val_per_family)
    for family in cfg.family_counts:
        for condition in cfg.conditions:
            if condition == "unseen_fact" and family not in HELDOUT_FAMILIES:
                continue
            draw(family, "test", condition, cfg.test_per_family_condition)
    return items


# ----------------------------------------------------------------------------- rendering

def rendering_path(speech: Speech) -> str:
    """Relative path of a rendering, named by a hash of everything that determines it."""
    h = config_hash(list(speech.key()), length=16)
    return f"audio/{h[:2]}/{h}.wav"


def _render(job):
    """Worker: synthesize one Speech, resample, write atomically. -> (rel_path, phonemes, seconds)."""
    root, speech_dict, sample_rate = job
    speech = Speech(**speech_dict)
    rel = rendering_path(speech)
    path = Path(root) / rel
    meta = path.with_suffix(".json")
    if path.exists() and meta.exists():  # complete from an earlier (possibly interrupted) build
        m = json.loads(meta.read_text())
        return rel, m["phonemes"], m["seconds"]
    wav, sr, phonemes = speech.synthesize()
    x = resample(torch.from_numpy(wav), sr, sample_rate)
    save_audio(path, x, sample_rate)
    seconds = x.numel() / sample_rate
    atomic_write_json(meta, {"phonemes": phonemes, "seconds": seconds}, durable=False)  # written after the audio
    return rel, phonemes, seconds


def _worker_init():
    torch.set_num_threads(1)  # one thread per process: the pool already uses every core


def render_all(root: Path, speeches: list[Speech], sample_rate: int, workers: int = 2, progress: bool = True) -> dict:
    """Render every distinct speech once. -> {speech.key(): Rendering}."""
    unique = list({s.key(): s for s in speeches}.values())
    jobs = [(str(root), asdict(s), sample_rate) for s in unique]
    bar = tqdm(total=len(jobs), desc="synthesizing", unit="clip", disable=not progress)
    out = {}
    if workers > 1:
        with ProcessPoolExecutor(max_workers=workers, initializer=_worker_init) as pool:
            for s, r in zip(unique, pool.map(_render, jobs, chunksize=32)):
                out[s.key()] = Rendering(*r)
                bar.update()
    else:
        for s, job in zip(unique, jobs):
            out[s.key()] = Rendering(*_render(job))
            bar.update()
    bar.close()
    return out


# ----------------------------------------------------------------------------- the corpus

class Corpus:
    """A built corpus: items with their audio, split, plus views for the training stages."""

    def __init__(self, root: Path, items: list[Item], config: CorpusConfig):
        self.root = Path(root)
        self.items = items
        self.config = config

    def __len__(self) -> int:
        return len(self.items)

    def __repr__(self) -> str:
        # the root relative to the cache, so the repr reads the same on every machine
        try:
            root = f"<cache>/{self.root.resolve().relative_to(cache_dir().resolve()).as_posix()}"
        except ValueError:
            root = str(self.root)
        return f"Corpus({self.config.name!r}, {len(self)} items, root={root!r})"

    def split(self, name: str, condition: str | None = None, family: str | None = None) -> list[Item]:
        if name not in ("train", "val", "test"):
            raise ValueError(f"unknown split {name!r}; use train, val or test")
        return [it for it in self.items if it.split == name
                and (condition is None or it.condition == condition) and (family is None or it.family == family)]

    def load(self, rendering: Rendering | str, sample_rate: int | None = None) -> torch.Tensor:
        """Audio of a rendering as (T,) float32 at ``sample_rate`` (default: the corpus rate)."""
        rel = rendering.path if isinstance(rendering, Rendering) else rendering
        return load_audio(self.root / rel, sample_rate=sample_rate or self.config.sample_rate)

    def answer_wav(self, item: Item, sample_rate: int | None = None) -> torch.Tensor:
        """The reference answer: its segments' audio concatenated. (T,)"""
        return torch.cat([self.load(r, sample_rate) for r in item.answer_audio])

    def stats(self) -> dict:
        """Counts per split / family / condition / language and hours of audio."""
        rendered = {r.path: r.seconds for it in self.items for r in [it.question_audio, *it.answer_audio]}
        return {
            "items": len(self.items),
            "by_split": dict(Counter(it.split for it in self.items)),
            "by_family": dict(Counter(it.family for it in self.items)),
            "train_by_family": dict(Counter(it.family for it in self.items if it.split == "train")),
            "test_by_condition": dict(Counter(it.condition for it in self.items if it.split == "test")),
            "by_language": dict(Counter(it.language for it in self.items)),
            "multi_segment": sum(it.is_multi_segment for it in self.items),
            "text_instruction": sum(it.instruction is not None for it in self.items),
            "clips": len(rendered),
            "audio_hours": sum(rendered.values()) / 3600,
        }

    # -- views for the later stages (each a list of plain records) ----------------------
    def utterances(self, split: str = "train") -> list[tuple[Speech, Rendering]]:
        """Every distinct clip of a split (questions and answers): audio continuation data."""
        seen, out = set(), []
        for it in self.split(split):
            for sp, r in [(it.question, it.question_audio), *zip(it.answer, it.answer_audio)]:
                if r.path not in seen:
                    seen.add(r.path)
                    out.append((sp, r))
        return out

    def asr_pairs(self, split: str = "train") -> list[dict]:
        """ASR view: audio -> its text (and phonemes)."""
        return [dict(audio=r, text=sp.text, language=sp.language, phonemes=r.phonemes) for sp, r in self.utterances(split)]

    def tts_pairs(self, split: str = "train") -> list[dict]:
        """TTS view: text and how to say it -> audio."""
        return [dict(text=sp.text, speech=sp, audio=r) for sp, r in self.utterances(split)]

    def aqta(self, split: str = "train") -> list[dict]:
        """Audio question -> text answer."""
        return [dict(id=it.id, question=it.question_audio, instruction=it.instruction, answer_text=it.answer_text)
                for it in self.split(split)]

    def aqtaa(self, split: str = "train") -> list[dict]:
        """Audio question -> text answer with its audio, segment by segment."""
        return [dict(id=it.id, question=it.question_audio, instruction=it.instruction,
                     segments=[dict(text=s.text, style=s.style, audio=r) for s, r in zip(it.answer, it.answer_audio)])
                for it in self.split(split)]


def corpus_root(cfg: CorpusConfig) -> Path:
    return cache_dir() / "corpus" / f"{cfg.name}-{config_hash(cfg)}"


def build_corpus(cfg: CorpusConfig | None = None, root: Path | None = None, progress: bool = True) -> Corpus:
    """Build (or reuse) the corpus for ``cfg``. Reuse requires a complete manifest."""
    cfg = cfg or CorpusConfig()
    root = Path(root) if root else corpus_root(cfg)
    manifest = root / "manifest.jsonl"
    if manifest.exists():
        return load_corpus(root)
    items = plan_items(cfg)
    speeches = [s for it in items for s in (it.question, *it.answer)]
    renders = render_all(root, speeches, cfg.sample_rate, cfg.workers, progress)
    items = [replace(it, question_audio=renders[it.question.key()], answer_audio=[renders[s.key()] for s in it.answer])
             for it in items]
    atomic_write_json(root / "config.json", cfg)
    atomic_write_text(manifest, "".join(json.dumps(it.to_dict(), ensure_ascii=False) + "\n" for it in items))
    return Corpus(root, items, cfg)


def load_corpus(root) -> Corpus:
    root = Path(root)
    manifest = root / "manifest.jsonl"
    if not manifest.exists():
        raise FileNotFoundError(f"no corpus manifest at {manifest} (build it with build_corpus)")
    cfg = CorpusConfig(**json.loads((root / "config.json").read_text()))
    items = [Item.from_dict(json.loads(line)) for line in manifest.read_text().splitlines() if line.strip()]
    return Corpus(root, items, cfg)


def _supplement(corpus: Corpus, path: Path, draws: list[tuple], seed_offset: int, accept=None,
                progress: bool = True) -> list[Item]:
    """Items drawn beside a built corpus, never repeating a question it renders: one per
    ``(family, split, condition, id)`` of ``draws``, from a generator seeded ``seed + seed_offset``
    (and kept only when ``accept(item)``). Their audio goes into the corpus folder beside the
    rest, and the list to ``path`` (read back on the next call), so the corpus's own splits and
    every cache key built on them stay as they were."""
    if path.exists():
        return [Item.from_dict(json.loads(line)) for line in path.read_text().splitlines() if line.strip()]
    cfg = corpus.config
    rng = random.Random(cfg.seed + seed_offset)
    heldout = heldout_facts(random.Random(cfg.seed + 1), cfg.heldout_fraction, cfg.max_operand)
    used = {(it.question.key(), it.instruction) for it in corpus.items}
    items: list[Item] = []
    for family, split, cond, item_id in draws:
        ctx = TaskContext(condition=cond, heldout=heldout, max_operand=cfg.max_operand,
                          text_instruction_prob=cfg.text_instruction_prob, phrasing=cfg.phrasing, voices=cfg.voices)
        for _ in range(10_000):
            item = make_item(family, rng, ctx)
            key = (item.question.key(), item.instruction)
            if key not in used and (accept is None or accept(item)):
                break
        else:
            raise RuntimeError(f"could not draw {len(draws)} distinct {family} items")
        used.add(key)
        items.append(replace(item, id=item_id, split=split))
    renders = render_all(corpus.root, [s for it in items for s in (it.question, *it.answer)], cfg.sample_rate,
                         cfg.workers, progress)
    items = [replace(it, question_audio=renders[it.question.key()], answer_audio=[renders[s.key()] for s in it.answer])
             for it in items]
    atomic_write_text(path, "".join(json.dumps(it.to_dict(), ensure_ascii=False) + "\n" for it in items))
    return items


def multi_segment_test_items(corpus: Corpus, n: int, progress: bool = True) -> list[Item]:
    """``n`` extra style-switch test items (answers in two styles), for the concatenation ablation.

    The corpus's test split has few multi-segment items (about a third of one family's seen,
    unseen-voice and unseen-prosody items: 9 in the toy corpus), too few to tell the
    concatenation modes apart. These are drawn like test items, a third per condition (see
    :func:`_supplement`: the 324-question test split and every cache key stay as they were),
    kept as ``multi_test-<n>.jsonl`` in the corpus folder. Ids read ``test-multi-<k>-<condition>``.
    """
    conditions = ("seen", "unseen_voice", "unseen_prosody")
    draws = [("voice_instruction_following", "test", conditions[k % 3], f"test-multi-{k:05d}-{conditions[k % 3]}")
             for k in range(n)]
    return _supplement(corpus, corpus.root / f"multi_test-{n}.jsonl", draws, 7_919,
                       accept=lambda it: it.is_multi_segment, progress=progress)


def long_answer_items(corpus: Corpus, n_train: int, n_test: int, progress: bool = True) -> list[Item]:
    """Items of the long-answer family (:func:`aqaa_ref.data.tasks.long_answer`: counting,
    spelling, reading back a list, a sentence in a style; 15-40 text tokens, several seconds of
    speech) for a corpus built without it: ``n_train`` training items in seen voices and
    prosody, then ``n_test`` test items cycling through the corpus's test conditions other
    than ``unseen_fact`` (nothing in this family is held out). Kept as
    ``long_answers-<n_train>-<n_test>.jsonl`` in the corpus folder (see :func:`_supplement`);
    ``item.split`` says which is which. Ids read ``train-long-<k>``, ``test-long-<k>-<condition>``.

    A corpus can also carry the family in every split of its own:
    ``CorpusConfig(family_counts={**TOY_FAMILY_COUNTS, "long_answer": 1000})``.
    """
    conditions = [c for c in corpus.config.conditions if c != "unseen_fact"]
    draws = [("long_answer", "train", "seen", f"train-long-{k:05d}") for k in range(n_train)]
    draws += [("long_answer", "test", conditions[k % len(conditions)], f"test-long-{k:05d}-{conditions[k % len(conditions)]}")
              for k in range(n_test)]
    return _supplement(corpus, corpus.root / f"long_answers-{n_train}-{n_test}.jsonl", draws, 104_729,
                       progress=progress)


def strided(items: list, limit: int | None) -> list:
    """``limit`` items evenly spaced over ``items``: item ``k * n // limit`` for k < limit (all
    of them when ``limit`` is None, 0 or at least ``len(items)``).

    Corpus splits are ordered by task family, so the first N items would all be English
    arithmetic; an evenly spaced subset covers every family, language and condition."""
    if not limit or limit >= len(items):
        return list(items)
    return [items[k * len(items) // limit] for k in range(limit)]

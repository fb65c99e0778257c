"""The whole post-training path, one command: pre-train -> SFT-1 -> SFT-2 -> masked DPO -> merge.

    python -m aqaa_ref train --preset toy        # or: run_recipe(Recipe.from_preset("toy"))

Each stage's result is cached under ``cache_dir()/runs/<recipe>/<stage>-<key>``, where the
key hashes the stage's own config *and its parents' keys*: change SFT-2's settings and only
SFT-2 and the merge re-run; change pre-training and everything after it re-runs. A stage
that was killed resumes from its last checkpoint (``aqaa_ref.training.loop``).

    pretrain ──> sft1 ──> sft2 ──┐
                   └────> dpo ───┴──> merge (5 : 5 : 1 over sft1, sft2, dpo)

"High quality" for SFT-2, honestly defined for synthetic data: every answer is correct
by construction, so quality here means the *audio tokens faithfully carry the answer*:
an item qualifies when each answer segment, encoded by the tokenizer and read back by its
linguistic CTC head, matches eSpeak's phonemes within ``sft2_max_per``.
"""
from __future__ import annotations

import copy
import dataclasses
import json
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from aqaa_ref import presets
from aqaa_ref.backbone.model import Step1Config, Step1ForCausalLM
from aqaa_ref.cache import atomic_write_json, cache_dir, config_hash
from aqaa_ref.data import CorpusConfig, build_corpus, strided
from aqaa_ref.data.phonemes import phoneme_tokens
from aqaa_ref.data.styles import assistant
from aqaa_ref.formats.answer_format import get_format
from aqaa_ref.formats.id_layout import AudioVocab
from aqaa_ref.formats.text_tokenizer import load_text_tokenizer, train_text_tokenizer
from aqaa_ref.metrics import edit_distance
from aqaa_ref.tokenizer import DualConfig, load_or_train_dual
from aqaa_ref.training.dpo import make_dpo_loss_fn, pair_count, reference_logps
from aqaa_ref.training.loop import TrainConfig, load_weights, train
from aqaa_ref.training.merge import merge_state_dicts
from aqaa_ref.training.sequences import (EVASIONS, SYSTEM_PROMPTS, AudioTable, SequenceBuilder, own_answer_pairs,
                                         preference_pairs, pretrain_examples, sft_examples, tokenize_corpus)
from aqaa_ref.vocoder.flow import VocoderConfig
from aqaa_ref.vocoder.mel2wav import Mel2WavConfig

STAGES = ("pretrain", "sft1", "sft2", "dpo", "merge")
DPO_REJECTED = ("synthetic", "own", "both")
PARENTS = {"pretrain": (), "sft1": ("pretrain",), "sft2": ("sft1",), "dpo": ("sft1",), "merge": ("sft1", "sft2", "dpo")}


@dataclass
class Recipe:
    """Everything that determines the trained toy models. Presets: ``tiny`` (tests), ``toy``."""

    name: str = "toy"
    corpus: CorpusConfig = field(default_factory=lambda: CorpusConfig.from_preset("toy"))
    # the dual tokenizer, laid out for this recipe's text vocabulary (the BPE's 512 ids)
    tokenizer: DualConfig = field(default_factory=lambda: DualConfig.from_preset("toy", text_vocab_size=512))
    # the Step-1 backbone; its vocab_size always follows the tokenizer's id layout. None = the toy preset
    backbone: Step1Config | None = None
    format: str = "ratio_10_15"
    concat_mode: str = "marker_preserving"
    pretrain_mix: dict = field(default_factory=lambda: dict(continuation=0.5, asr=1.0, tts=0.5, interleaved=1.0))
    pretrain: TrainConfig = field(default_factory=lambda: TrainConfig(
        steps=300, batch_size=32, lr=2e-3, warmup_steps=20, new_token_lr_mult=5.0, mixed_precision="bf16",
        checkpoint_every=100))
    sft1: TrainConfig = field(default_factory=lambda: TrainConfig(
        steps=600, batch_size=32, lr=1.5e-3, warmup_steps=20, mixed_precision="bf16", checkpoint_every=100))
    aqta_fraction: float = 0.2               # share of items also given as text-answer (AQTA) examples
    sft2: TrainConfig = field(default_factory=lambda: TrainConfig(
        steps=100, batch_size=32, lr=5e-4, warmup_steps=5, mixed_precision="bf16", checkpoint_every=50))
    sft2_max_per: float = 0.25
    dpo: TrainConfig = field(default_factory=lambda: TrainConfig(
        steps=60, batch_size=16, lr=2e-4, warmup_steps=5, mixed_precision="bf16", checkpoint_every=30))
    dpo_beta: float = 0.1
    dpo_masked: bool = True
    dpo_evasion_fraction: float = 0.3
    dpo_max_pairs: int | None = None         # None: every pair; N: a seeded subset of N (short live runs)
    # rejected answers: "synthetic" (another item's answer, an evasion: preference_pairs), "own"
    # (SFT-1's own wrong answers to dpo_own_items strided train questions: own_answer_pairs), "both"
    dpo_rejected: str = "synthetic"
    dpo_own_items: int = 1200
    merge_weights: tuple = (5.0, 5.0, 1.0)
    vocoder_preset: str = "toy"               # the preset vocoder and mel2wav start from
    # the flow vocoder and the mel-to-wave model (each cached on its own key); None = the preset's
    vocoder: VocoderConfig | None = None
    mel2wav: Mel2WavConfig | None = None
    seed: int = 0
    # None: the dual and text tokenizers are this recipe's own (trained here, cached); set by
    # ``Assets(recipe, pretrained=folder)`` to the shipped tokenizer's tag, so stages trained on a
    # shipped tokenizer's codes get their own cache keys
    tokenizer_source: str | None = None

    __key_defaults__ = {"tokenizer_source": None, "dpo_max_pairs": None, "dpo_rejected": "synthetic",
                        "dpo_own_items": 1200}

    def __post_init__(self):
        size = self.tokenizer.vocab.size
        if self.backbone is None:
            self.backbone = Step1Config.from_preset("toy", vocab_size=size)
        elif self.backbone.vocab_size != size:
            self.backbone = dataclasses.replace(self.backbone, vocab_size=size)
        if self.vocoder is None:
            self.vocoder = VocoderConfig.from_preset(self.vocoder_preset)
        if self.mel2wav is None:
            self.mel2wav = Mel2WavConfig.from_preset(self.vocoder_preset)
        if self.dpo_rejected not in DPO_REJECTED:
            raise ValueError(f"dpo_rejected must be one of {', '.join(DPO_REJECTED)}, got {self.dpo_rejected!r}")

    @classmethod
    def from_preset(cls, name: str, **overrides) -> "Recipe":
        """The recipe of a preset (aqaa_ref/presets.py: "toy" is this class's field defaults)."""
        kw = presets.preset("recipe", name)
        if isinstance(kw.get("tokenizer"), dict):
            kw["tokenizer"] = DualConfig.from_preset(kw["tokenizer"].pop("preset"), **kw["tokenizer"])
        if isinstance(kw.get("backbone"), dict):
            vocab = (kw.get("tokenizer") or Recipe.__dataclass_fields__["tokenizer"].default_factory()).vocab
            kw["backbone"] = Step1Config.from_preset(kw["backbone"].pop("preset"), **{"vocab_size": vocab.size,
                                                                                     **kw["backbone"]})
        if isinstance(kw.get("corpus"), dict):
            kw["corpus"] = CorpusConfig.from_preset(kw["corpus"].pop("preset"), **kw["corpus"])
        for stage in ("pretrain", "sft1", "sft2", "dpo"):
            if isinstance(kw.get(stage), dict):
                kw[stage] = TrainConfig(**kw[stage])
        return cls(**{"name": name, **kw, **overrides})

    def stage_config(self, stage: str) -> dict:
        """The settings that determine one stage's own result (its parents' keys are added)."""
        # the tokenizer enters by its full config (not only its preset name): a changed
        # tokenizer setting gives other audio codes, so every stage must re-run
        tok = self.tokenizer
        common = dict(corpus=self.corpus, tokenizer=tok, text_vocab_size=tok.text_vocab_size,
                      format=self.format, concat_mode=self.concat_mode, seed=self.seed)
        if self.tokenizer_source is not None:       # absent for the recipe's own tokenizer: keys unchanged
            common["tokenizer_source"] = self.tokenizer_source
        own = {"pretrain": dict(backbone=self.backbone.hyperparameters(), mix=self.pretrain_mix, train=self.pretrain),
               "sft1": dict(train=self.sft1, aqta_fraction=self.aqta_fraction),
               "sft2": dict(train=self.sft2, max_per=self.sft2_max_per),
               "dpo": dict(train=self.dpo, beta=self.dpo_beta, masked=self.dpo_masked,
                           evasion_fraction=self.dpo_evasion_fraction),
               "merge": dict(weights=list(self.merge_weights))}[stage]
        if stage == "dpo" and self.dpo_max_pairs is not None:   # likewise: absent = every pair, as before
            own["max_pairs"] = self.dpo_max_pairs
        if stage == "dpo" and self.dpo_rejected != "synthetic":   # absent = the synthetic pairs, as before
            own.update(rejected=self.dpo_rejected, own_items=self.dpo_own_items)
        return {**common, **own}

    def stage_key(self, stage: str) -> str:
        parents = [self.stage_key(p) for p in PARENTS[stage]]
        return config_hash(self.stage_config(stage), parents)

    def stage_dir(self, stage: str) -> Path:
        return cache_dir() / "runs" / self.name / f"{stage}-{self.stage_key(stage)}"


class Assets:
    """What every stage shares: corpus, tokenizers, audio codes, the sequence builder.

    ``pretrained``: a shipped checkpoint folder (``aqaa_ref.checkpoints``) whose dual and text
    tokenizers are used instead of training them; the corpus is still built here (it is the
    data). The recipe's ``tokenizer_source`` is then set to the shipped tokenizer's tag, so a
    stage trained on these assets is cached apart from one trained on a tokenizer trained here.
    :meth:`load_stage` then serves every stage the folder ships, and :meth:`variant` recipes
    train only the stages they change (a stage whose key is unchanged still loads from the
    folder: notebook 05 trains an unmasked DPO from the shipped SFT-1).
    """

    def __init__(self, recipe: Recipe, progress: bool = True, pretrained=None):
        self.pretrained = pretrained
        self.corpus = build_corpus(recipe.corpus, progress=progress)
        if pretrained is None:
            self.dual = load_or_train_dual(self.corpus, recipe.tokenizer, progress=progress)
        else:
            from aqaa_ref import checkpoints

            self.dual = checkpoints.load_dual(pretrained)
            if self.dual.config.training_key(self.corpus.config) != recipe.tokenizer.training_key(self.corpus.config):
                raise ValueError(f"{pretrained}: its dual tokenizer was trained with another config than recipe "
                                 f"{recipe.name!r}'s; pick the recipe it was exported from")
            recipe = dataclasses.replace(recipe, tokenizer_source=self.dual.source)
        self.recipe = recipe
        # stage -> key of the stages the folder ships (its recipe as given): load_stage serves them
        self.shipped_keys = {} if pretrained is None else {s: recipe.stage_key(s) for s in STAGES}
        self.vocab: AudioVocab = self.dual.vocab
        self.table = tokenize_corpus(self.corpus, self.dual, progress=progress)
        self.tok = self._text_tokenizer() if pretrained is None else checkpoints.load_text_tokenizer(pretrained)
        self.builder = SequenceBuilder(self.tok, self.table, get_format(recipe.format), recipe.concat_mode)

    def _text_tokenizer(self):
        path = cache_dir() / "text_tokenizer" / config_hash(self.recipe.corpus, self.vocab.to_dict())
        if (path / "tokenizer.json").exists():
            return load_text_tokenizer(path)
        texts = [s.text for it in self.corpus.items for s in (it.question, *it.answer)]
        texts += [it.instruction for it in self.corpus.items if it.instruction]
        texts += list(SYSTEM_PROMPTS.values()) + list(EVASIONS.values())
        tok = train_text_tokenizer(texts, self.vocab)
        tok.save_pretrained(str(path))
        return tok

    def variant(self, **changes) -> "Assets":
        """The same corpus, tokenizers and codes under a changed recipe (``dataclasses.replace``):
        ``assets.variant(dpo_masked=False)``. Only training settings may change here."""
        shared = ("corpus", "tokenizer", "format", "concat_mode", "tokenizer_source")
        if any(k in changes for k in shared):
            raise ValueError(f"a variant shares the corpus, tokenizers and format; to change "
                             f"{', '.join(k for k in changes if k in shared)}, build Assets for a new recipe")
        other = copy.copy(self)
        other.recipe = dataclasses.replace(self.recipe, **changes)
        return other

    def new_model(self) -> Step1ForCausalLM:
        torch.manual_seed(self.recipe.seed)
        return Step1ForCausalLM(self.recipe.backbone)

    def is_shipped(self, stage: str) -> bool:
        """Whether ``stage`` of this recipe is the one the ``pretrained`` folder ships."""
        return self.shipped_keys.get(stage) == self.recipe.stage_key(stage)

    def load_stage(self, stage: str) -> Step1ForCausalLM:
        """A trained stage, eval mode: from the shipped folder when it ships this stage, else from
        the cache (``run_stage`` trains it there)."""
        if self.is_shipped(stage):
            from aqaa_ref import checkpoints

            return checkpoints.load_backbone(self.pretrained, stage)
        d = self.recipe.stage_dir(stage)
        if stage == "merge":
            m = self.new_model()
            m.load_state_dict(_load_safetensors(d / "model.safetensors"))
            return m.eval()
        return load_weights(self.new_model(), d).eval()

    def evasion_audio(self) -> dict:
        """(language, style) -> LLSSS ids of the evasive answer spoken in that style."""
        out = {}
        train = self.corpus.split("train")
        for lang, style in sorted({(it.language, it.style) for it in train if not it.is_multi_segment}):
            wav, sr, _ = assistant(EVASIONS[lang], lang, style).synthesize()
            lc, sc = self.dual.encode(torch.from_numpy(wav), sr)
            out[(lang, style)] = AudioTable({"e": (lc.tolist(), sc.tolist())}, self.vocab).ids("e")
        return out

    def high_quality(self, items) -> list:
        """Items whose every answer segment survives tokenization (CTC PER <= sft2_max_per)."""
        per: dict = {}
        lt = self.dual.linguistic
        for r in {r.path: r for it in items for r in it.answer_audio}.values():
            ref = phoneme_tokens(r.phonemes)
            hyp = lt.transcribe(self.dual.prepare(self.corpus.load(r)))
            per[r.path] = edit_distance(hyp, ref) / max(1, len(ref))
        return [it for it in items if all(per[r.path] <= self.recipe.sft2_max_per for r in it.answer_audio)]


def _load_safetensors(path):
    from safetensors.torch import load_file
    return load_file(str(path))


def sft1_own_pairs(assets: Assets, model, items) -> list[dict]:
    """:func:`own_answer_pairs` of ``model`` (SFT-1) on ``items``: its greedy answers, scored,
    the wrong ones as rejections. Generation is memoised on disk like every scoring pass."""
    from aqaa_ref.inference.generation import answers_memoised, score_answers

    answers = answers_memoised(model, assets.builder, items)
    scores = score_answers(assets.builder, items, answers)
    return own_answer_pairs(assets.builder, items, answers, [s.text_correct for s in scores])


def ensure_stage(stage: str, assets: Assets, progress: bool = True) -> dict:
    """Make ``stage`` loadable by ``assets.load_stage``: nothing to do when the shipped folder
    has it; otherwise its parents first, then :func:`run_stage` (which only reads the summary
    of a stage already in the cache). Returns the stage's summary ({} for a shipped stage)."""
    if assets.is_shipped(stage):
        return {}
    for p in PARENTS[stage]:
        ensure_stage(p, assets, progress)
    return run_stage(stage, assets, progress)


def run_stage(stage: str, assets: Assets, progress: bool = True) -> dict:
    """Run one stage (its parents must be done). Returns its summary (also saved as done.json)."""
    r, d = assets.recipe, assets.recipe.stage_dir(stage)
    done = d / "done.json"
    if done.exists():
        return json.loads(done.read_text())
    if assets.is_shipped(stage):
        raise ValueError(f"stage {stage!r} is shipped in {assets.pretrained}: load it with assets.load_stage; "
                         "train a variant (assets.variant(...)) or build Assets without `pretrained` to retrain it")
    t0 = time.perf_counter()
    train_items = assets.corpus.split("train")
    info: dict = {"stage": stage, "key": r.stage_key(stage)}
    if stage == "merge":
        sds = [assets.load_stage(p).state_dict() for p in PARENTS["merge"]]
        from safetensors.torch import save_file
        d.mkdir(parents=True, exist_ok=True)
        save_file(merge_state_dicts(sds, r.merge_weights), str(d / "model.safetensors"))
        info["weights"] = list(r.merge_weights)
    else:
        if stage == "pretrain":
            model = assets.new_model()
            examples = pretrain_examples(assets.builder, assets.corpus, r.pretrain_mix, r.seed)
            res = train(model, examples, r.pretrain, d, desc="pre-train")
        elif stage in ("sft1", "sft2"):
            model = assets.load_stage(PARENTS[stage][0])
            items = train_items if stage == "sft1" else assets.high_quality(train_items)
            if not items:
                raise ValueError(f"SFT-2 has no items: none passes sft2_max_per={r.sft2_max_per}")
            info["items"] = len(items)
            examples = sft_examples(assets.builder, items, r.aqta_fraction if stage == "sft1" else 0.0, r.seed)
            res = train(model, examples, getattr(r, stage), d, desc=stage.upper())
        else:  # dpo from SFT-1, frozen reference = SFT-1 (its log-probs precomputed once)
            model = assets.load_stage("sft1")
            pairs = [] if r.dpo_rejected == "own" else preference_pairs(
                assets.builder, train_items, assets.evasion_audio(), r.seed, r.dpo_evasion_fraction)
            if r.dpo_rejected != "synthetic":
                own_pairs = sft1_own_pairs(assets, model, strided(train_items, r.dpo_own_items))
                info["own_pairs"] = len(own_pairs)
                pairs += own_pairs
            if r.dpo_max_pairs is not None and r.dpo_max_pairs < len(pairs):    # a seeded subset, in order
                keep = sorted(random.Random(r.seed).sample(range(len(pairs)), r.dpo_max_pairs))
                pairs = [pairs[i] for i in keep]
            pairs = reference_logps(model, pairs, assets.vocab, masked=r.dpo_masked)
            info["pairs"] = len(pairs)
            res = train(model, pairs, r.dpo, d, loss_fn=make_dpo_loss_fn(assets.vocab, r.dpo_beta, r.dpo_masked),
                        token_count=pair_count, desc="DPO")
        info["examples"] = len(examples if stage != "dpo" else pairs)
        info["final_loss"] = res.final_loss
        info["losses"] = [m["loss"] for m in res.metrics]
    info["seconds"] = time.perf_counter() - t0
    atomic_write_json(done, info)
    return info


def run_recipe(recipe: Recipe, stages=STAGES, progress: bool = True, assets: Assets | None = None) -> dict:
    """Run the stages in order (cached ones are loaded). Returns {stage: summary}."""
    assets = assets or Assets(recipe, progress)
    return {s: run_stage(s, assets, progress) for s in stages}



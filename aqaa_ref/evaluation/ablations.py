"""The paper's ablations at toy scale: one command each, trained on top of the recipe's cache.

    python -m aqaa_ref ablate format   --preset toy     # or: run_ablation("format", "toy")
    python -m aqaa_ref ablate all      --preset tiny --limit 8

Every ablation reuses what the recipe (:mod:`aqaa_ref.training.recipe`) already trained (its
pre-training, SFT-1, SFT-2 and DPO stages, run first if missing) and trains only its
variants, with *reduced* step counts (:class:`AblationConfig`), cached by config under
``cache_dir()/ablations/<recipe>/<ablation>/<variant>-<key>`` like recipe stages. The
generated answers are cached too (``.../scores``), so a second call trains and generates
nothing. Each returns one row dict per variant and prints an aligned table; the rows also go
to ``cache_dir()/ablations/results/ablation_<name>_<preset>.json``.

What the paper found (from ../shared/docs/aqaa-facts.md), and what is measured here:

format (Table 1)    LLM-judged Chat / Relevance / Factuality: ratio_10_15 4.03 / 0.65 / 0.67
                    and text_cot 4.01 / 0.59 / 0.58 work; audio_only 1.72 / 0.05 / 0.03,
                    ratio_6_50 1.20 / 0.04 / 0.05 and ratio_3_5 1.03 / 0.00 / 0.00 collapse.
                    Here: SFT (reduced) from the recipe's pre-training once per format;
                    text accuracy (n/a for audio_only), audio-token accuracy, well-formed
                    rate, mean answer length. The recipe pre-trains its interleaved task in
                    its own format (ratio_10_15), which favours that format a little.
concat (Table 2)    multi-label speech: marker_preserving 4.22 / 0.57 / 0.57 (best),
                    marker_removal 4.08 / 0.56 / 0.57, pre_interleaved 3.82 / 0.54 / 0.59;
                    with marker removal the model almost never switches style. Here: SFT
                    (reduced) from pre-training on all multi-segment train items plus single
                    ones, scored on the multi-segment test items (few: the val ones are
                    reported beside them); ``last_segment_audio_acc`` aligns the answer's
                    end with the last segment's reference (did the second style come out?).
codebook (§2.1)     dual-codebook training lowers next-token perplexity of both token types
                    versus single-codebook; a 3B model's ASR CER went 25.5 -> 18.4
                    (semantic-only -> dual); linguistic-only gives high perplexity.
                    Here: dual vs linguistic-only vs semantic-only audio, each pre-trained
                    and SFT'd from scratch (reduced) on the same clips and items; a single
                    stream keeps the 120 ms grouping (2 L or 3 S tokens per group) and the
                    answer ratio keeps its time per round (10 text : 6 L, 10 text : 9 S).
                    Measured: teacher-forced perplexity per token type on held-out SFT
                    examples, and AQTA text accuracy (audio question in that variant's
                    tokens, text answer).
dpo (§3.3)          audio-token-masked DPO is needed: unmasked DPO misaligned text and audio
                    and damaged audio generation (no numbers published). Here: the recipe's
                    DPO and its mask-flipped twin (same stage settings), against SFT-1;
                    answer scores plus, on held-out preference pairs, the text log-prob
                    margin (chosen - rejected) and the per-token log-prob of the chosen
                    answer's audio (how well audio is still modelled).
merge (§3.4)        the paper merges SFT-1 : SFT-2 : DPO = 5 : 5 : 1 and publishes no
                    ablation of the weights. Here: each single checkpoint, 1:1:1 and 5:5:1.

Time model (printed before training): a batch-32 step of ~300-token sequences takes
~1.3 s on the 2 shared CPU cores, i.e. ``seconds_per_token`` = 1.35e-4 per token of a
step; the estimate is steps x batch x mean example length x that.
"""
from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
import torch.nn.functional as F

from aqaa_ref.cache import atomic_write_json, cache_dir, config_hash
from aqaa_ref.formats.answer_format import Format, get_format, parse_answer
from aqaa_ref.formats.id_layout import IGNORE_INDEX, whole_groups
from aqaa_ref.inference.generation import generate_answers, score_answers, summarize
from aqaa_ref.training.dpo import kept_positions, sequence_logps
from aqaa_ref.training.loop import TrainConfig, load_weights, pad_collate, train
from aqaa_ref.training.merge import merge_state_dicts
from aqaa_ref.training.recipe import Assets, Recipe, run_stage, strided
from aqaa_ref.training.sequences import AudioTable, SequenceBuilder, preference_pairs, pretrain_examples, sft_examples

ABLATIONS = ("format", "concat", "codebook", "dpo", "merge")

#: what the paper found, per ablation (printed above each table)
PAPER = {
    "format": "ratio_10_15 best (Chat 4.03, Rel 0.65, Fact 0.67), text_cot close (4.01/0.59/0.58); "
              "audio_only (1.72/0.05/0.03), ratio_6_50 (1.20/0.04/0.05), ratio_3_5 (1.03/0.00/0.00) collapse",
    "concat": "marker_preserving best (Chat 4.22, 0.57/0.57) > marker_removal (4.08, 0.56/0.57) > "
              "pre_interleaved (3.82, 0.54/0.59); with marker removal the style almost never switches",
    "codebook": "dual lowers next-token perplexity of both token types vs single-codebook; ASR CER 25.5 -> 18.4 "
                "(semantic-only -> dual, 3B); linguistic-only: high perplexity",
    "dpo": "masked DPO needed: unmasked DPO misaligned text and audio and damaged audio generation (no numbers)",
    "merge": "5:5:1 (SFT-1:SFT-2:DPO) is the paper's choice; no ablation of the weights is published",
}


def paper_direction(name: str) -> str:
    """The paper's finding for one ablation, one line."""
    _check_name(name)
    return PAPER[name]


def _check_name(name: str) -> None:
    if name not in ABLATIONS:
        raise ValueError(f"unknown ablation {name!r}; known: {', '.join(ABLATIONS)}, all")


@dataclass
class AblationConfig:
    """Reduced training for the variants, and how they are scored. Presets: tiny, toy."""

    name: str = "toy"
    sft: TrainConfig = field(default_factory=lambda: TrainConfig(      # format / concat variants
        steps=180, batch_size=16, lr=1.5e-3, warmup_steps=10, mixed_precision="bf16", checkpoint_every=90))
    codebook_pretrain: TrainConfig = field(default_factory=lambda: TrainConfig(
        steps=200, batch_size=32, lr=2e-3, warmup_steps=20, new_token_lr_mult=5.0, mixed_precision="bf16",
        checkpoint_every=100))
    codebook_sft: TrainConfig = field(default_factory=lambda: TrainConfig(
        steps=120, batch_size=16, lr=1.5e-3, warmup_steps=10, mixed_precision="bf16", checkpoint_every=60))
    codebook_aqta_fraction: float = 0.5      # AQTA is what codebook answers are scored on
    train_items: int | None = None           # strided subset of train items for variant SFT (None: all)
    concat_single_items: int | None = 800    # single-segment items beside all multi-segment ones
    min_multi_items: int = 20                # fewer multi-segment test items than this: say so
    formats: tuple = ("audio_only", "ratio_6_50", "ratio_3_5", "text_cot", "ratio_10_15")
    concat_modes: tuple = ("pre_interleaved", "marker_removal", "marker_preserving")
    streams: tuple = ("dual", "linguistic", "semantic")
    merges: tuple = ((5.0, 5.0, 1.0), (1.0, 1.0, 1.0))
    limit: int = 64                          # strided test items scored per variant
    max_new_tokens: int = 256
    eval_batch_size: int = 32
    seconds_per_token: float = 1.3 / (32 * 300)   # fwd+bwd, 2 shared CPU cores, toy backbone
    seconds_per_decode_step: float = 0.04         # one batched KV-cached step (a guess; printed beside)

    @classmethod
    def from_preset(cls, name: str) -> "AblationConfig":
        if name == "toy":
            return cls()
        if name == "tiny":
            t = lambda steps: TrainConfig(steps=steps, batch_size=4, lr=3e-3, warmup_steps=1,  # noqa: E731
                                          checkpoint_every=0, progress=False)
            return cls(name="tiny", sft=t(2), codebook_pretrain=t(2), codebook_sft=t(2), concat_single_items=8,
                       min_multi_items=4, limit=4, max_new_tokens=32, eval_batch_size=8)
        raise ValueError(f"unknown ablation preset {name!r}; known: tiny, toy")


# ----------------------------------------------------------------------------- caching, training

def ablation_root(recipe: Recipe) -> Path:
    return cache_dir() / "ablations" / recipe.name


def result_path(name: str, preset: str) -> Path:
    """Where ``run_ablation`` records an ablation's table (under the cache, never the source
    tree; ``benchmarks/bench_ablations.py`` copies the toy tables to ``benchmarks/results/``)."""
    return cache_dir() / "ablations" / "results" / f"ablation_{name}_{preset}.json"


def _train_key(cfg: TrainConfig) -> dict:
    """A TrainConfig minus what does not change the weights (progress bars, logging)."""
    return {k: v for k, v in asdict(cfg).items() if k not in ("progress", "log_every")}


@dataclass
class Variant:
    """One model to train: ``init()`` gives the starting model, ``examples()`` its data."""
    name: str
    out_dir: Path
    init: object
    examples: object
    cfg: TrainConfig

    @property
    def done(self) -> bool:
        return (self.out_dir / "done.json").exists()

    def info(self) -> dict:
        return json.loads((self.out_dir / "done.json").read_text())


def _variant_dir(recipe: Recipe, ablation: str, name: str, *config) -> Path:
    return ablation_root(recipe) / ablation / f"{name}-{config_hash(*config)}"


def padded_tokens_per_step(examples: list[dict], batch_size: int, samples: int = 64, seed: int = 0) -> float:
    """Mean of batch_size x (longest example in the batch) over random batches: the tokens a
    step computes on, padding included (what its time scales with)."""
    g = torch.Generator().manual_seed(seed)
    lens = torch.tensor([len(e.get("input_ids", e.get("chosen_input_ids", ()))) for e in examples], dtype=torch.float)
    picks = torch.randint(len(lens), (samples, min(batch_size, len(lens))), generator=g)
    return float(lens[picks].max(dim=1).values.mean()) * batch_size


def train_variants(variants: list[Variant], cfg: AblationConfig, progress: bool = True) -> None:
    """Train the variants not yet done (estimate printed first); done ones are only loaded."""
    todo = [v for v in variants if not v.done]
    if todo:
        data, total = {}, 0.0
        for v in todo:
            data[v.name] = v.examples()
            total += v.cfg.steps * padded_tokens_per_step(data[v.name], v.cfg.batch_size) * cfg.seconds_per_token
        print(f"training {len(todo)} variant(s) ({', '.join(v.name for v in todo)}): "
              f"~{total / 60:.1f} min estimated at {cfg.seconds_per_token:.2e} s per token-step")
        for v in todo:
            t0 = time.perf_counter()
            res = train(v.init(), data.pop(v.name), replace(v.cfg, progress=progress), v.out_dir, desc=v.name)
            seconds = time.perf_counter() - t0
            atomic_write_json(v.out_dir / "done.json", {"variant": v.name, "final_loss": res.final_loss,
                                                        "losses": [m["loss"] for m in res.metrics], "seconds": seconds})
            print(f"  {v.name}: {v.cfg.steps} steps in {seconds:.0f} s, final loss {res.final_loss:.3f}")


def _generate_cached(recipe: Recipe, key, load_model, builder, items, cfg: AblationConfig,
                     output: str = "text+audio") -> list[list[int]]:
    """Generated answer ids, memoised on disk by (model key, items, decoding settings)."""
    h = config_hash(key, [it.id for it in items], output, cfg.max_new_tokens, builder.fmt, builder.concat_mode)
    path = ablation_root(recipe) / "scores" / f"{h}.json"
    if path.exists():
        return json.loads(path.read_text())
    model = load_model()
    prompts = [builder.prompt(builder.table.ids(it.question_audio.path), it.instruction, output) for it in items]
    answers = generate_answers(model, builder, prompts, max_new_tokens=cfg.max_new_tokens,
                               batch_size=cfg.eval_batch_size, output=output)
    atomic_write_json(path, answers)
    return answers


def _answer_row(builder, items, answers) -> dict:
    """Scores of generated answers. well_formed: ended with <|EOT|> and parsed with no issue
    (a truncated answer is not counted, even when its prefix is clean)."""
    scores = score_answers(builder, items, answers)
    s, n = summarize(scores), max(1, len(scores))
    return {"n": s["n"], "text_accuracy": s["text_accuracy"], "audio_token_accuracy": s["audio_token_accuracy"],
            "well_formed": sum(x.well_formed for x in scores) / n,
            "answer_tokens": sum(map(len, answers)) / n}


def _eval_estimate(n_items: int, n_models: int, cfg: AblationConfig) -> str:
    steps = n_models * math.ceil(n_items / cfg.eval_batch_size) * cfg.max_new_tokens
    return f"generation: {n_models} model(s) x {n_items} items, at most ~{steps * cfg.seconds_per_decode_step / 60:.1f} min"


# ----------------------------------------------------------------------------- 1. format

def _builder(assets: Assets, fmt: Format | str | None = None, concat_mode: str | None = None,
             table: AudioTable | None = None) -> SequenceBuilder:
    r = assets.recipe
    fmt = get_format(fmt or r.format) if not isinstance(fmt, Format) else fmt
    return SequenceBuilder(assets.tok, table or assets.table, fmt, concat_mode or r.concat_mode)


def _sft_variant(assets: Assets, ablation: str, name: str, builder: SequenceBuilder, items, cfg: AblationConfig,
                 aqta_fraction: float) -> Variant:
    r = assets.recipe
    d = _variant_dir(r, ablation, name, r.stage_key("pretrain"), builder.fmt, builder.concat_mode,
                     [it.id for it in items], aqta_fraction, _train_key(cfg.sft))
    return Variant(name, d, lambda: assets.load_stage("pretrain"),
                   lambda: sft_examples(builder, items, aqta_fraction, r.seed), cfg.sft)


def format_ablation(assets: Assets, cfg: AblationConfig, limit: int | None = None, progress: bool = True) -> list:
    """Table 1: SFT from pre-training once per answer format; scored on strided test items."""
    r = assets.recipe
    run_stage("pretrain", assets, progress)
    train_items = strided(assets.corpus.split("train"), cfg.train_items)
    builders = {f: _builder(assets, f) for f in cfg.formats}
    variants = [_sft_variant(assets, "format", f, builders[f], train_items, cfg, r.aqta_fraction) for f in cfg.formats]
    train_variants(variants, cfg, progress)
    items = strided(assets.corpus.split("test"), limit or cfg.limit)
    print(_eval_estimate(len(items), len(variants), cfg))
    rows = []
    for v in variants:
        b = builders[v.name]
        ans = _generate_cached(r, v.out_dir.name, lambda: load_weights(assets.new_model(), v.out_dir).eval(), b, items, cfg)
        row = {"variant": v.name, **_answer_row(b, items, ans)}
        if b.fmt.text_per_chunk == 0:                     # audio_only has no text channel
            row["text_accuracy"] = None
        row["reference_tokens"] = sum(len(b.answer_ids(it)) + 1 for it in items) / max(1, len(items))
        row["final_loss"] = v.info()["final_loss"]
        rows.append(row)
    return rows


# ----------------------------------------------------------------------------- 2. concat

def _last_segment_acc(builder, items, answers) -> float:
    """Audio-token agreement of the answer's end with the last segment's reference rendering."""
    accs = []
    for it, ans in zip(items, answers):
        ref = builder.table.ids(it.answer_audio[-1].path)
        gen = parse_answer(ans, builder.vocab, builder.special).aligned_audio()
        accs.append(sum(a == b for a, b in zip(reversed(ref), reversed(gen))) / max(1, len(ref)))
    return sum(accs) / max(1, len(accs))


def concat_ablation(assets: Assets, cfg: AblationConfig, limit: int | None = None, progress: bool = True) -> list:
    """Table 2: multi-segment answers under each concatenation mode."""
    r = assets.recipe
    run_stage("pretrain", assets, progress)
    train_split = assets.corpus.split("train")
    multi = [it for it in train_split if it.is_multi_segment]
    items = multi + strided([it for it in train_split if not it.is_multi_segment], cfg.concat_single_items)
    builders = {m: _builder(assets, concat_mode=m) for m in cfg.concat_modes}
    variants = [_sft_variant(assets, "concat", m, builders[m], items, cfg, r.aqta_fraction) for m in cfg.concat_modes]
    train_variants(variants, cfg, progress)
    test = strided([it for it in assets.corpus.split("test") if it.is_multi_segment], limit or cfg.limit)
    val = [it for it in assets.corpus.split("val") if it.is_multi_segment]
    if len(test) < cfg.min_multi_items:
        print(f"note: only {len(test)} multi-segment test items (want >= {cfg.min_multi_items}); "
              f"the {len(val)} multi-segment val items are reported beside them")
    print(_eval_estimate(len(test) + len(val), len(variants), cfg))
    rows = []
    for v in variants:
        b = builders[v.name]
        both = _generate_cached(r, v.out_dir.name, lambda: load_weights(assets.new_model(), v.out_dir).eval(),
                                b, test + val, cfg)
        ans, vans = both[:len(test)], both[len(test):]
        row = {"variant": v.name, **_answer_row(b, test, ans), "last_segment_audio_acc": _last_segment_acc(b, test, ans)}
        vrow = _answer_row(b, val, vans) if val else {}
        row.update({"val_n": len(val), "val_text_accuracy": vrow.get("text_accuracy"),
                    "val_audio_token_accuracy": vrow.get("audio_token_accuracy"),
                    "val_well_formed": vrow.get("well_formed"), "final_loss": v.info()["final_loss"]})
        rows.append(row)
    return rows


# ----------------------------------------------------------------------------- 3. codebook

class SingleStreamTable(AudioTable):
    """An audio table that keeps one stream: per 120 ms group, 2 linguistic ("linguistic"),
    3 semantic ("semantic") or all 5 as LLSSS ("dual"). Groups as in the dual stream (the
    incomplete tail dropped), so every variant covers the same audio."""

    def __init__(self, codes: dict, vocab, stream: str):
        if stream not in ("dual", "linguistic", "semantic"):
            raise ValueError(f"stream must be dual, linguistic or semantic, got {stream!r}")
        super().__init__(codes, vocab)
        self.stream = stream

    def ids(self, path: str) -> list[int]:
        if self.stream == "dual":
            return super().ids(path)
        lc, sc = self.codes[path]
        n = whole_groups(len(lc), len(sc))
        if self.stream == "linguistic":
            return [self.vocab.linguistic_offset + c for c in lc[:2 * n]]
        return [self.vocab.semantic_offset + c for c in sc[:3 * n]]


def single_stream_format(fmt: Format, stream: str) -> Format:
    """The answer format for one stream, keeping the time per round: ratio_10_15 (10 text :
    6 L : 9 S) -> 10 text : 6 L (group (2, 0)) or 10 text : 9 S (group (0, 3))."""
    if stream == "dual":
        return fmt
    group = (2, 0) if stream == "linguistic" else (0, 3)
    tri = fmt.tri_codebook()
    if tri is None:                                        # text_cot / audio_only: no per-round count
        return Format(f"{fmt.name}_{stream}", fmt.text_per_chunk, None, group)
    y = tri[1] if stream == "linguistic" else tri[2]
    return Format(f"ratio_{tri[0]}_{y}_{stream}", tri[0], y, group)


def stream_builder(assets: Assets, stream: str) -> SequenceBuilder:
    table = SingleStreamTable(assets.table.codes, assets.vocab, stream)
    return _builder(assets, single_stream_format(get_format(assets.recipe.format), stream), table=table)


@torch.no_grad()
def token_type_perplexity(model, examples: list[dict], builder: SequenceBuilder, batch_size: int = 16) -> dict:
    """Teacher-forced perplexity over the learned positions, split by the label's type:
    text (plain text ids), linguistic, semantic and all audio. Markers and <|EOT|> are in
    none of them. Returns {type: perplexity or None when the type never occurs}."""
    model.eval()
    vocab, special = builder.vocab, builder.special
    sums = {k: [0.0, 0] for k in ("text", "linguistic", "semantic", "audio")}
    for i in range(0, len(examples), batch_size):
        b = pad_collate(examples[i:i + batch_size])
        logits = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits[:, :-1].float()
        labels = b["labels"][:, 1:]                                            # (B, T-1)
        nll = F.cross_entropy(logits.transpose(1, 2), labels.clamp(min=0), reduction="none")  # (B, T-1)
        valid = labels != IGNORE_INDEX
        plain = torch.ones_like(valid)
        for t in special.all():
            plain &= labels != t
        masks = {"text": valid & plain & vocab.is_text(labels), "linguistic": valid & vocab.is_linguistic(labels),
                 "semantic": valid & vocab.is_semantic(labels), "audio": valid & vocab.is_audio(labels)}
        for k, m in masks.items():
            sums[k][0] += float(nll[m].sum())
            sums[k][1] += int(m.sum())
    return {k: (math.exp(s / n) if n else None) for k, (s, n) in sums.items()}


def codebook_ablation(assets: Assets, cfg: AblationConfig, limit: int | None = None, progress: bool = True) -> list:
    """Dual vs linguistic-only vs semantic-only audio tokens, each pre-trained and SFT'd from scratch."""
    r = assets.recipe
    common = {k: v for k, v in r.stage_config("pretrain").items() if k != "train"}  # data, tokenizer, backbone
    train_items = strided(assets.corpus.split("train"), cfg.train_items)
    builders = {s: stream_builder(assets, s) for s in cfg.streams}
    pre, sft = [], []
    for s in cfg.streams:
        b = builders[s]
        pd = _variant_dir(r, "codebook", f"{s}-pretrain", common, s, _train_key(cfg.codebook_pretrain))
        pre.append(Variant(f"{s}-pretrain", pd, assets.new_model,
                           lambda b=b: pretrain_examples(b, assets.corpus, r.pretrain_mix, r.seed), cfg.codebook_pretrain))
        sd = _variant_dir(r, "codebook", f"{s}-sft", pd.name, [it.id for it in train_items],
                          cfg.codebook_aqta_fraction, _train_key(cfg.codebook_sft))
        sft.append(Variant(s, sd, lambda pd=pd: load_weights(assets.new_model(), pd),
                           lambda b=b: sft_examples(b, train_items, cfg.codebook_aqta_fraction, r.seed),
                           cfg.codebook_sft))
    pending = [v for v in pre + sft if not v.done]
    if pending:
        print(f"codebook: {len(pending)} training run(s) pending (pre-training from scratch, then SFT)")
    train_variants(pre, cfg, progress)
    train_variants(sft, cfg, progress)
    items = strided(assets.corpus.split("test"), limit or cfg.limit)
    print(_eval_estimate(len(items), len(sft), cfg) + " (text answers: far less)")
    rows = []
    for v in sft:
        b = builders[v.name]
        model = load_weights(assets.new_model(), v.out_dir).eval()
        ppl = token_type_perplexity(model, [b.sft_example(it) for it in items], b, cfg.eval_batch_size)
        ans = _generate_cached(r, v.out_dir.name, lambda: model, b, items, cfg, output="text")
        acc = sum(s.text_correct for s in score_answers(b, items, ans)) / max(1, len(items))
        rows.append({"variant": v.name, "n": len(items), "ppl_text": ppl["text"], "ppl_linguistic": ppl["linguistic"],
                     "ppl_semantic": ppl["semantic"], "ppl_audio": ppl["audio"], "aqta_text_accuracy": acc,
                     "final_loss": v.info()["final_loss"]})
    return rows


# ----------------------------------------------------------------------------- 4. dpo

@torch.no_grad()
def preference_metrics(model, pairs: list[dict], vocab, batch_size: int = 16) -> dict:
    """On preference pairs: mean text log-prob margin log pi(y_w) - log pi(y_l) (text tokens
    only, summed per answer), the share of pairs it ranks right, and the mean per-token
    log-prob of the chosen answers' audio tokens."""
    model.eval()
    margins, audio_lp, audio_n = [], 0.0, 0
    for i in range(0, len(pairs), batch_size):
        b = pad_collate(pairs[i:i + batch_size])
        lp = {}
        for side in ("chosen", "rejected"):
            logits = model(input_ids=b[f"{side}_input_ids"], attention_mask=b[f"{side}_attention_mask"]).logits
            labels = b[f"{side}_labels"]
            lp[side] = sequence_logps(logits, labels, kept_positions(labels, vocab, masked=True))
            if side == "chosen":
                audio = (labels != IGNORE_INDEX) & vocab.is_audio(labels)
                audio_lp += float(sequence_logps(logits, labels, audio).sum())
                audio_n += int(audio[:, 1:].sum())
        margins += (lp["chosen"] - lp["rejected"]).tolist()
    n = max(1, len(margins))
    return {"text_margin": sum(margins) / n, "pair_accuracy": sum(m > 0 for m in margins) / n,
            "audio_logp": audio_lp / max(1, audio_n)}


def dpo_ablation(assets: Assets, cfg: AblationConfig, limit: int | None = None, progress: bool = True) -> list:
    """Masked vs unmasked DPO from SFT-1 (the recipe's DPO settings; only the mask differs)."""
    r = assets.recipe
    for s in ("pretrain", "sft1"):
        run_stage(s, assets, progress)
    flavours = {}
    for masked in (True, False):
        a = copy.copy(assets)
        a.recipe = replace(r, dpo_masked=masked)
        if not (a.recipe.stage_dir("dpo") / "done.json").exists():
            print(f"training DPO ({'masked' if masked else 'unmasked'}, {a.recipe.dpo.steps} steps of "
                  f"{a.recipe.dpo.batch_size} pairs, plus one reference pass over every train pair)")
        run_stage("dpo", a, progress)
        flavours["dpo_masked" if masked else "dpo_unmasked"] = a
    items = strided(assets.corpus.split("test"), limit or cfg.limit)
    print(_eval_estimate(len(items), 3, cfg) + " and held-out preference pairs")
    models = {"sft1": (r.stage_key("sft1"), lambda: assets.load_stage("sft1"))}
    models.update({k: (a.recipe.stage_key("dpo"), lambda a=a: a.load_stage("dpo")) for k, a in flavours.items()})
    pairs, rows = None, []
    for name, (key, load) in models.items():
        ans = _generate_cached(r, key, load, assets.builder, items, cfg)
        # pair metrics are memoised too: the evasion audio is re-synthesised on each call,
        # and eSpeak does not always give the same samples twice in one process
        pair_key = config_hash(key, [it.id for it in items], "pairs", r.seed, r.dpo_evasion_fraction)
        path = ablation_root(r) / "scores" / f"{pair_key}.json"
        if path.exists():
            pm = json.loads(path.read_text())
        else:
            if pairs is None:
                pairs = preference_pairs(assets.builder, items, assets.evasion_audio(), r.seed, r.dpo_evasion_fraction)
            pm = {"pairs": len(pairs), **preference_metrics(load(), pairs, assets.vocab, cfg.eval_batch_size)}
            atomic_write_json(path, pm)
        rows.append({"variant": name, **_answer_row(assets.builder, items, ans), **pm})
    return rows


# ----------------------------------------------------------------------------- 5. merge

def merge_ablation(assets: Assets, cfg: AblationConfig, limit: int | None = None, progress: bool = True) -> list:
    """Each of SFT-1, SFT-2, DPO alone vs their weighted averages (no training)."""
    r = assets.recipe
    parents = ("sft1", "sft2", "dpo")
    for s in ("pretrain", *parents):
        run_stage(s, assets, progress)
    items = strided(assets.corpus.split("test"), limit or cfg.limit)
    print(_eval_estimate(len(items), len(parents) + len(cfg.merges), cfg))
    sds: dict = {}

    def state(stage):
        if stage not in sds:
            sds[stage] = assets.load_stage(stage).state_dict()
        return sds[stage]

    def merged(weights):
        m = assets.new_model()
        m.load_state_dict(merge_state_dicts([state(p) for p in parents], weights))
        return m.eval()

    models = {s: (r.stage_key(s), lambda s=s: assets.load_stage(s)) for s in parents}
    for w in cfg.merges:
        name = "merge_" + "_".join(f"{x:g}" for x in w)
        models[name] = (config_hash([r.stage_key(p) for p in parents], list(w)), lambda w=w: merged(w))
    rows = []
    for name, (key, load) in models.items():
        ans = _generate_cached(r, key, load, assets.builder, items, cfg)
        rows.append({"variant": name, **_answer_row(assets.builder, items, ans)})
    return rows


# ----------------------------------------------------------------------------- running, printing

RUNNERS = {"format": format_ablation, "concat": concat_ablation, "codebook": codebook_ablation,
           "dpo": dpo_ablation, "merge": merge_ablation}


def format_table(rows: list[dict]) -> str:
    """Rows -> an aligned text table (floats to 3 decimals, None as n/a)."""
    if not rows:
        return "(no rows)"
    cols = list(rows[0])
    cell = lambda v: "n/a" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)  # noqa: E731
    cells = [[cell(r.get(c)) for c in cols] for r in rows]
    width = [max(len(c), *(len(row[k]) for row in cells)) for k, c in enumerate(cols)]
    line = lambda xs: "  ".join(x.rjust(w) if k else x.ljust(w) for k, (x, w) in enumerate(zip(xs, width)))  # noqa: E731
    return "\n".join([line(cols), line(["-" * w for w in width]), *map(line, cells)])


def run_ablation(name: str, preset: str = "toy", limit: int | None = None, progress: bool = True,
                 assets: Assets | None = None, config: AblationConfig | None = None):
    """Run one ablation (or "all") on a recipe preset; print its table. Returns its rows
    (for "all": {name: rows})."""
    if name == "all":
        assets = assets or Assets(Recipe.from_preset(preset), progress)
        return {n: run_ablation(n, preset, limit, progress, assets, config) for n in ABLATIONS}
    _check_name(name)
    cfg = config or AblationConfig.from_preset(preset)
    assets = assets or Assets(Recipe.from_preset(preset), progress)
    t0 = time.perf_counter()
    rows = RUNNERS[name](assets, cfg, limit, progress)
    seconds = time.perf_counter() - t0
    print(f"\nablation {name} (recipe {assets.recipe.name}, {seconds:.0f} s)")
    print(f"paper: {PAPER[name]}")
    print(format_table(rows))
    out = result_path(name, preset)
    old = json.loads(out.read_text()) if out.exists() else None
    if not (old and old["rows"] == json.loads(json.dumps(rows))):
        # rewritten only when the rows changed: a call served from the cache keeps the
        # recorded wall time of the run that trained the variants
        atomic_write_json(out, {"ablation": name, "preset": preset, "limit": limit or cfg.limit,
                                "seconds": seconds, "paper": PAPER[name],
                                "config": asdict(cfg), "rows": rows})
        print(f"wrote {out}")
    return rows

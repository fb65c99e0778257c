"""What the five ablations share: their config, the paper's directions, variant training and
caching, memoised generation and scoring, seeds and intervals, the table printer (see the
package docstring)."""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch

from aqaa_ref.cache import atomic_write_json, cache_dir, config_hash
from aqaa_ref.formats.answer_format import Format, get_format
from aqaa_ref.inference.generation import generate_answers, score_answers, summarize
from aqaa_ref.metrics import bootstrap_interval, paired_bootstrap
from aqaa_ref.training.loop import TrainConfig, train
from aqaa_ref.training.recipe import Assets, Recipe
from aqaa_ref.training.sequences import AudioTable, SequenceBuilder, sft_examples
from aqaa_ref import presets


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


#: the paper's directions as checkable claims: (variant, ">" or "~", other variant, metric). ">":
#: the first is better; "~": the two are close (the paper's text-CoT against 10:15). The merge
#: has no published ablation: its claims are the recipe's premise, that 5:5:1 beats each part.
CLAIMS = {
    "format": [("ratio_10_15", ">", "audio_only", "audio_token_accuracy"),
               ("ratio_10_15", ">", "ratio_6_50", "audio_token_accuracy"),
               ("ratio_10_15", ">", "ratio_3_5", "audio_token_accuracy"),
               ("ratio_10_15", "~", "text_cot", "audio_token_accuracy")]
              # the same on the long answers alone, the only ones the formats write differently
              # (position-wise, and with partial credit) ...
              + [(a, rel, b, m) for m in ("long_audio_token_accuracy", "long_audio_similarity") for a, rel, b in
                 (("ratio_10_15", ">", "audio_only"), ("ratio_10_15", ">", "ratio_6_50"), ("ratio_10_15", ">", "ratio_3_5"),
                  ("ratio_10_15", "~", "text_cot"))]
              # ... and their text channel's words (audio_only has none)
              + [(a, rel, b, "long_word_accuracy") for a, rel, b in
                 (("ratio_10_15", ">", "ratio_6_50"), ("ratio_10_15", ">", "ratio_3_5"), ("ratio_10_15", "~", "text_cot"))],
    "concat": [("marker_preserving", ">", "marker_removal", "audio_token_accuracy"),
               ("marker_removal", ">", "pre_interleaved", "audio_token_accuracy"),
               ("marker_preserving", ">", "marker_removal", "last_segment_audio_acc")],
    "codebook": [("dual", ">", "semantic", "aqta_text_accuracy"),
                 ("dual", ">", "linguistic", "aqta_text_accuracy")],
    "dpo": [("dpo_masked", ">", "dpo_unmasked", "audio_token_accuracy")],
    "merge": [("merge_5_5_1", ">", "sft1", "text_accuracy"), ("merge_5_5_1", ">", "sft2", "text_accuracy"),
              ("merge_5_5_1", ">", "dpo", "text_accuracy")],
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
    sft: TrainConfig = field(default_factory=lambda: TrainConfig(      # concat variants
        steps=180, batch_size=16, lr=1.5e-3, warmup_steps=10, mixed_precision="bf16", checkpoint_every=90))
    # format variants: twice the steps, for the long answers beside the short ones, with length-
    # bucketed batches (a long and a short example in one batch pad the short one to the long length)
    format_sft: TrainConfig = field(default_factory=lambda: TrainConfig(
        steps=360, batch_size=16, lr=1.5e-3, warmup_steps=10, mixed_precision="bf16", checkpoint_every=90,
        bucket_batches=8))
    codebook_pretrain: TrainConfig = field(default_factory=lambda: TrainConfig(
        steps=200, batch_size=32, lr=2e-3, warmup_steps=20, new_token_lr_mult=5.0, mixed_precision="bf16",
        checkpoint_every=100))
    codebook_sft: TrainConfig = field(default_factory=lambda: TrainConfig(
        steps=120, batch_size=16, lr=1.5e-3, warmup_steps=10, mixed_precision="bf16", checkpoint_every=60))
    codebook_aqta_fraction: float = 0.5      # AQTA is what codebook answers are scored on
    train_items: int | None = None           # strided subset of train items for variant SFT (None: all)
    concat_single_items: int | None = 800    # single-segment items beside all multi-segment ones
    min_multi_items: int = 60                # fewer multi-segment test items than this: say so
    multi_test_items: int = 72               # style-switch test items drawn beside the test split's own
    format_short_items: int | None = 2250    # strided train items the format variants learn from ...
    long_train_items: int = 1000             # ... beside this many long answers (data.long_answer_items)
    long_test_items: int = 48                # long answers scored beside the strided test items
    long_max_new_tokens: int = 512           # a slow 14-word answer is ~6 s: ~250 audio + ~35 text tokens
    formats: tuple = ("audio_only", "ratio_6_50", "ratio_3_5", "text_cot", "ratio_10_15")
    concat_modes: tuple = ("pre_interleaved", "marker_removal", "marker_preserving")
    streams: tuple = ("dual", "linguistic", "semantic")
    merges: tuple = ((5.0, 5.0, 1.0), (1.0, 1.0, 1.0))
    limit: int = 64                          # strided test items scored per variant
    seed: int = 0                            # the variants' training seed (see with_seed)
    max_new_tokens: int = 256
    eval_batch_size: int = 32
    seconds_per_token: float = 1.3 / (32 * 300)   # fwd+bwd, 2 shared CPU cores, toy backbone
    seconds_per_decode_step: float = 0.04         # one batched KV-cached step (a guess; printed beside)

    @classmethod
    def from_preset(cls, name: str, **overrides) -> "AblationConfig":
        kw = presets.preset("ablation", name)
        kw = {k: TrainConfig(**v) if isinstance(v, dict) else v for k, v in kw.items()}
        return cls(**{"name": name, **kw, **overrides})

    def with_seed(self, seed: int) -> "AblationConfig":
        """The same ablation with every variant trained under ``seed``: the data order of each
        stage, and the initial weights where a variant starts from scratch. Seed 0 is the
        config as it was, so its variants keep their cache keys."""
        return replace(self, seed=seed, **{k: replace(getattr(self, k), seed=seed)
                                           for k in ("sft", "format_sft", "codebook_pretrain", "codebook_sft")})


# ----------------------------------------------------------------------------- caching, training

def ablation_root(recipe: Recipe) -> Path:
    return cache_dir() / "ablations" / recipe.name


def scores_dir(recipe: Recipe) -> Path:
    """Memoised generations and pair metrics of the ablations of ``recipe``."""
    return ablation_root(recipe) / "scores"


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
    path = scores_dir(recipe) / f"{h}.json"
    if path.exists():
        return json.loads(path.read_text())
    model = load_model()
    prompts = [builder.item_prompt(it, output) for it in items]
    answers = generate_answers(model, builder, prompts, max_new_tokens=cfg.max_new_tokens,
                               batch_size=cfg.eval_batch_size, output=output)
    atomic_write_json(path, answers)
    return answers


def _answer_row(builder, items, answers) -> dict:
    """Scores of generated answers. well_formed: ended with <|EOT|> and parsed with no issue
    (a truncated answer is not counted, even when its prefix is clean). ``per_item`` keeps
    each item's text and audio-token scores, for the intervals and the paired comparisons."""
    scores = score_answers(builder, items, answers)
    s, n = summarize(scores), max(1, len(scores))
    return {"n": s["n"], "text_accuracy": s["text_accuracy"], "audio_token_accuracy": s["audio_token_accuracy"],
            "well_formed": sum(x.well_formed for x in scores) / n,
            "answer_tokens": sum(map(len, answers)) / n,
            "per_item": {"text_accuracy": [float(x.text_correct) for x in scores],
                         "audio_token_accuracy": [float(x.audio_token_accuracy) for x in scores]}}


# ----------------------------------------------------------------------------- seeds and intervals

def combine_seeds(runs: list[list[dict]], level: float = 0.95) -> list[dict]:
    """One ablation's rows from each seed -> one row per variant.

    A float column becomes its mean over the seeds; every metric with per-item scores gains
    ``<metric>_ci``, a percentile bootstrap interval over the test items of the seed-averaged
    item scores (:func:`aqaa_ref.metrics.bootstrap_interval`), and with more than one seed
    ``<metric>_by_seed``, each seed's mean, so the seed-to-seed spread is shown beside the
    item-to-item one. ``per_item`` holds the seed-averaged item scores (for :func:`verdicts`).
    """
    if not runs or any(len(r) != len(runs[0]) for r in runs):
        raise ValueError("every seed must give the same variants")
    out = []
    for rows in zip(*runs):
        if len({r["variant"] for r in rows}) != 1:
            raise ValueError(f"seeds disagree on the variant order: {[r['variant'] for r in rows]}")
        row: dict = {"variant": rows[0]["variant"], "seeds": len(rows)}
        for k, v in rows[0].items():
            if k in ("variant", "per_item"):
                continue
            vals = [r[k] for r in rows]
            row[k] = sum(vals) / len(vals) if isinstance(v, float) and None not in vals else v
        per = {}
        for m, first in rows[0].get("per_item", {}).items():
            cols = [r["per_item"][m] for r in rows]
            per[m] = [sum(xs) / len(xs) for xs in zip(*cols)] if first else []
            row[f"{m}_ci"] = list(bootstrap_interval(per[m], level)) if per[m] else None
            if len(rows) > 1:
                row[f"{m}_by_seed"] = [sum(c) / len(c) for c in cols] if per[m] else None
        row["per_item"] = per
        out.append(row)
    return out


def verdicts(name: str, rows: list[dict], level: float = 0.95) -> list[dict]:
    """The paper's claims (:data:`CLAIMS`) checked on the rows, by a paired bootstrap over items.

    ">" claims: ``reproduces`` when the interval of (variant - other) lies above 0,
    ``contradicts`` when it lies below, ``undecided`` when it holds 0. "~" claims: ``contradicts``
    when the interval excludes 0, else ``no difference detected``. A claim whose variants or
    metric are missing from the rows is skipped."""
    by = {r["variant"]: r for r in rows}
    out = []
    for a, rel, b, metric in CLAIMS.get(name, []):
        pa, pb = (by.get(v, {}).get("per_item", {}).get(metric) for v in (a, b))
        if not pa or not pb:
            continue
        d, lo, hi = paired_bootstrap(pa, pb, level)
        if rel == ">":
            verdict = "reproduces" if lo > 0 else "contradicts" if hi < 0 else "undecided"
        else:
            verdict = "contradicts" if lo > 0 or hi < 0 else "no difference detected"
        out.append({"claim": f"{a} {rel} {b}", "metric": metric, "n": len(pa), "difference": d,
                    "ci": [lo, hi], "verdict": verdict})
    return out


def verdict_table(vs: list[dict]) -> str:
    """Verdicts -> aligned lines: claim, metric, difference [interval], verdict."""
    return "\n".join(f"  {v['claim']:<40} {v['metric']:<24} {v['difference']:+.3f} "
                     f"[{v['ci'][0]:+.3f}, {v['ci'][1]:+.3f}]  n={v['n']:<4} {v['verdict']}" for v in vs)


def _eval_estimate(n_items: int, n_models: int, cfg: AblationConfig) -> str:
    steps = n_models * math.ceil(n_items / cfg.eval_batch_size) * cfg.max_new_tokens
    return f"generation: {n_models} model(s) x {n_items} items, at most ~{steps * cfg.seconds_per_decode_step / 60:.1f} min"


# ----------------------------------------------------------------------------- shared by the ablations

def _builder(assets: Assets, fmt: Format | str | None = None, concat_mode: str | None = None,
             table: AudioTable | None = None) -> SequenceBuilder:
    r = assets.recipe
    fmt = get_format(fmt or r.format) if not isinstance(fmt, Format) else fmt
    return SequenceBuilder(assets.tok, table or assets.table, fmt, concat_mode or r.concat_mode)


def _sft_variant(assets: Assets, ablation: str, name: str, builder: SequenceBuilder, items, train_cfg: TrainConfig,
                 aqta_fraction: float) -> Variant:
    """A variant SFT'd from the recipe's pre-training under ``train_cfg`` (cached by all of it)."""
    r = assets.recipe
    d = _variant_dir(r, ablation, name, r.stage_key("pretrain"), builder.fmt, builder.concat_mode,
                     [it.id for it in items], aqta_fraction, _train_key(train_cfg))
    return Variant(name, d, lambda: assets.load_stage("pretrain"),
                   lambda: sft_examples(builder, items, aqta_fraction, r.seed), train_cfg)


def _cell(v) -> str:
    """One table cell: floats to 3 decimals, None as n/a, a list of floats as a/b/c."""
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.3f}"
    if isinstance(v, (list, tuple)):
        return "/".join(_cell(x) for x in v)
    return str(v)


def format_table(rows: list[dict]) -> str:
    """Rows -> an aligned text table (floats to 3 decimals, None as n/a, lists as a/b/c; the
    per-item scores are not printed). A metric's interval ``<metric>_ci`` is printed in the
    metric's own cell, ``0.420 [0.350, 0.500]``."""
    if not rows:
        return "(no rows)"
    cols = [c for c in rows[0] if c != "per_item" and not (c.endswith("_ci") and c[:-3] in rows[0])]

    def cell(r, c):
        ci = r.get(f"{c}_ci")
        if ci is not None and r.get(c) is not None:
            return f"{r[c]:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]"
        return _cell(r.get(c))

    cells = [[cell(r, c) for c in cols] for r in rows]
    width = [max(len(c), *(len(row[k]) for row in cells)) for k, c in enumerate(cols)]
    line = lambda xs: "  ".join(x.rjust(w) if k else x.ljust(w) for k, (x, w) in enumerate(zip(xs, width)))  # noqa: E731
    return "\n".join([line(cols), line(["-" * w for w in width]), *map(line, cells)])

"""The paper's ablations at toy scale: one command each, trained on top of the recipe's cache.

    python -m aqaa_ref ablate format   --preset toy     # or: run_ablation("format", "toy")
    python -m aqaa_ref ablate all      --preset tiny --limit 8
    python -m aqaa_ref ablate concat   --seeds 3 --checkpoints checkpoints/toy   # from the shipped stages

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
                    Here: SFT (AblationConfig.format_sft) from the recipe's pre-training
                    once per format, on strided train items plus long answers
                    (data.long_answer_items: counting, spelling, a list read back, a
                    sentence in a style; 10-34 text tokens;
                    the corpus's one-word answers are the same sequence in 10:15 and
                    text-CoT); text accuracy (n/a for audio_only), audio-token accuracy,
                    well-formed rate, mean answer length, on strided test items plus long
                    test items, and on the long ones alone (long_*); differs_from_10_15
                    counts the reference answers a format writes unlike 10:15. The recipe
                    pre-trains its interleaved task in its own format (ratio_10_15), which
                    favours that format a little.
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

Statistics: every row gives n, and for each metric scored per item a 95 % percentile
bootstrap interval over the test items (``<metric>_ci``); with ``--seeds N`` the variants are
trained N times (seeds 0 .. N-1: data order, and initial weights where a variant starts from
scratch), the columns are seed means, ``<metric>_by_seed`` lists each seed's, and the interval
is over the seed-averaged item scores. The paper's directions (:data:`CLAIMS`) are then checked
by a paired bootstrap of the difference between two variants on the same items: a verdict
("reproduces", "contradicts") is given only where the interval excludes zero, else "undecided".

Time model (printed before training): a batch-32 step of ~300-token sequences takes
~1.3 s on the 2 shared CPU cores, i.e. ``seconds_per_token`` = 1.35e-4 per token of a
step; the estimate is steps x batch x mean example length x that.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict

from aqaa_ref.cache import atomic_write_json
from aqaa_ref.evaluation.ablations.codebook import (SingleStreamTable, codebook_ablation, single_stream_format,
                                                    stream_builder, token_type_perplexity)
from aqaa_ref.evaluation.ablations.common import (ABLATIONS, CLAIMS, PAPER, AblationConfig, _check_name, ablation_root,
                                                  combine_seeds, format_table, paper_direction, result_path, verdict_table,
                                                  verdicts)
from aqaa_ref.evaluation.ablations.concat import concat_ablation
from aqaa_ref.evaluation.ablations.dpo import dpo_ablation, preference_metrics
from aqaa_ref.evaluation.ablations.format import format_ablation
from aqaa_ref.evaluation.ablations.merge import merge_ablation
from aqaa_ref.formats.answer_format import get_format
from aqaa_ref.training.recipe import Assets, Recipe

__all__ = ["ABLATIONS", "CLAIMS", "PAPER", "AblationConfig", "RUNNERS", "combine_seeds", "verdicts", "verdict_table",
           "SingleStreamTable", "ablation_root", "codebook_ablation",
           "concat_ablation", "dpo_ablation", "format_ablation", "format_table", "get_format", "merge_ablation",
           "paper_direction", "preference_metrics", "result_path", "run_ablation", "single_stream_format",
           "stream_builder", "token_type_perplexity"]

RUNNERS = {"format": format_ablation, "concat": concat_ablation, "codebook": codebook_ablation,
           "dpo": dpo_ablation, "merge": merge_ablation}


def run_ablation(name: str, preset: str = "toy", limit: int | None = None, progress: bool = True,
                 assets: Assets | None = None, config: AblationConfig | None = None, seeds: int = 1,
                 checkpoints=None):
    """Run one ablation (or "all") on a recipe preset, ``seeds`` times (variants trained under
    seeds 0 .. seeds-1; seed 0 is the cached single-seed run); print its table with intervals
    and the paper's claims checked against them. Returns its rows (for "all": {name: rows}).

    ``checkpoints``: a shipped folder whose tokenizers and stages the ablation starts from
    (only its own variants train), instead of the recipe's cache."""
    if seeds < 1:
        raise ValueError(f"seeds must be at least 1, got {seeds}")
    if name == "all":
        assets = assets or Assets(Recipe.from_preset(preset), progress, pretrained=checkpoints)
        return {n: run_ablation(n, preset, limit, progress, assets, config, seeds, checkpoints) for n in ABLATIONS}
    _check_name(name)
    cfg = config or AblationConfig.from_preset(preset)
    assets = assets or Assets(Recipe.from_preset(preset), progress, pretrained=checkpoints)
    # the merge trains nothing: every seed would give the same rows
    n_seeds = 1 if name == "merge" else seeds
    t0 = time.perf_counter()
    runs, seconds_by_seed = [], []
    for seed in range(n_seeds):
        ts = time.perf_counter()
        runs.append(RUNNERS[name](assets, cfg.with_seed(seed), limit, progress))
        seconds_by_seed.append(time.perf_counter() - ts)
    rows = combine_seeds(runs)
    vs = verdicts(name, rows)
    seconds = time.perf_counter() - t0
    print(f"\nablation {name} (recipe {assets.recipe.name}, {n_seeds} seed(s), {seconds:.0f} s)")
    print(f"paper: {PAPER[name]}")
    print(format_table(rows))
    if vs:
        print("paper's claims, paired bootstrap over the items (95 %):")
        print(verdict_table(vs))
    out = result_path(name, preset)
    old = json.loads(out.read_text()) if out.exists() else None
    if not (old and old["rows"] == json.loads(json.dumps(rows))):
        # rewritten only when the rows changed: a call served from the cache keeps the
        # recorded wall time of the run that trained the variants
        atomic_write_json(out, {"ablation": name, "preset": preset, "limit": limit or cfg.limit, "seeds": n_seeds,
                                "checkpoints": str(checkpoints) if checkpoints else None,
                                "seconds": seconds, "seconds_by_seed": seconds_by_seed, "paper": PAPER[name],
                                "config": asdict(cfg), "rows": rows, "verdicts": vs})
        print(f"wrote {out}")
    return rows

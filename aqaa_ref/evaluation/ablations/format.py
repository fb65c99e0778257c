"""Output format (paper Table 1): 10:15 against 3:5, 6:50, text-CoT and audio-only.

The corpus's answers are one or two words (about 3 text tokens): every format puts them in its
first text chunk, so 10:15 and text-CoT write them as the same sequence. The variants are
therefore trained and scored with long-answer items beside them (``data.long_answer_items``:
counting, spelling, a list read back, a sentence in a style; 15-40 text tokens), which the
formats do write differently; ``differs_from_10_15`` counts per format how many of the scored
reference answers differ from the 10:15 one, and the ``long_*`` columns score the long items
alone.
"""
from __future__ import annotations

from dataclasses import replace

from aqaa_ref.data import long_answer_items, strided
from aqaa_ref.evaluation.ablations.common import (AblationConfig, _answer_row, _builder, _eval_estimate,
                                                  _generate_cached, _sft_variant, train_variants)
from aqaa_ref.training.loop import load_weights
from aqaa_ref.training.recipe import Assets, ensure_stage
from aqaa_ref.training.sequences import with_extra_clips


def format_ablation(assets: Assets, cfg: AblationConfig, limit: int | None = None, progress: bool = True) -> list:
    """Table 1: SFT from pre-training once per answer format, on the train split plus
    ``cfg.long_train_items`` long answers; scored on strided test items plus
    ``cfg.long_test_items`` long ones (the long items decode up to ``cfg.long_max_new_tokens``)."""
    r = assets.recipe
    ensure_stage("pretrain", assets, progress)
    extra = long_answer_items(assets.corpus, cfg.long_train_items, cfg.long_test_items, progress) \
        if cfg.long_train_items or cfg.long_test_items else []
    long_train = [it for it in extra if it.split == "train"]
    long_test = strided([it for it in extra if it.split == "test"], limit)
    table = with_extra_clips(assets.table, assets.dual, assets.corpus, extra, progress)
    train_items = strided(assets.corpus.split("train"), cfg.train_items) + long_train
    builders = {f: _builder(assets, f, table=table) for f in cfg.formats}
    # long and short examples in one batch pad the short ones to the long length: bucket them
    sft = replace(cfg, sft=replace(cfg.sft, bucket_batches=cfg.format_bucket_batches)) if long_train else cfg
    variants = [_sft_variant(assets, "format", f, builders[f], train_items, sft, r.aqta_fraction) for f in cfg.formats]
    train_variants(variants, cfg, progress)
    items = strided(assets.corpus.split("test"), limit or cfg.limit)
    print(_eval_estimate(len(items) + len(long_test), len(variants), cfg))
    ref = builders.get("ratio_10_15") or _builder(assets, "ratio_10_15", table=table)
    rows = []
    for v in variants:
        b = builders[v.name]
        load = lambda: load_weights(assets.new_model(), v.out_dir).eval()  # noqa: E731
        ans = _generate_cached(r, v.out_dir.name, load, b, items, cfg)
        lans = _generate_cached(r, v.out_dir.name, load, b, long_test, replace(cfg, max_new_tokens=cfg.long_max_new_tokens)) \
            if long_test else []
        row = {"variant": v.name, **_answer_row(b, items + long_test, ans + lans)}
        long_row = _answer_row(b, long_test, lans) if long_test else {}
        row.update({"long_n": len(long_test), "long_text_accuracy": long_row.get("text_accuracy"),
                    "long_audio_token_accuracy": long_row.get("audio_token_accuracy"),
                    "long_well_formed": long_row.get("well_formed")})
        if long_test:
            row["per_item"].update({f"long_{m}": xs for m, xs in long_row["per_item"].items()})
        if b.fmt.text_per_chunk == 0:                     # audio_only has no text channel
            for m in ("text_accuracy", "long_text_accuracy"):
                row[m] = None
                row["per_item"][m] = []
        scored = items + long_test
        row["reference_tokens"] = sum(len(b.answer_ids(it)) + 1 for it in scored) / max(1, len(scored))
        # how many reference answers this format writes differently from 10:15 (one-word answers
        # are the same sequences in 10:15 and text-CoT: only the long ones can tell them apart)
        row["differs_from_10_15"] = sum(b.answer_ids(it) != ref.answer_ids(it) for it in scored)
        row["final_loss"] = v.info()["final_loss"]
        rows.append(row)
    return rows

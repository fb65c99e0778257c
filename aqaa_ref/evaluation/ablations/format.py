"""Output format (paper Table 1): 10:15 against 3:5, 6:50, text-CoT and audio-only."""
from __future__ import annotations

from aqaa_ref.data import strided
from aqaa_ref.evaluation.ablations.common import (AblationConfig, _answer_row, _builder, _eval_estimate,
                                                  _generate_cached, _sft_variant, train_variants)
from aqaa_ref.training.loop import load_weights
from aqaa_ref.training.recipe import Assets, ensure_stage


def format_ablation(assets: Assets, cfg: AblationConfig, limit: int | None = None, progress: bool = True) -> list:
    """Table 1: SFT from pre-training once per answer format; scored on strided test items."""
    r = assets.recipe
    ensure_stage("pretrain", assets, progress)
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
            row["per_item"]["text_accuracy"] = []
        row["reference_tokens"] = sum(len(b.answer_ids(it)) + 1 for it in items) / max(1, len(items))
        # how many reference answers this format writes differently from 10:15 (with one-word
        # answers text-CoT and 10:15 are the same sequences: then the two rows cannot differ)
        ref = builders.get("ratio_10_15") or _builder(assets, "ratio_10_15")
        row["differs_from_10_15"] = sum(b.answer_ids(it) != ref.answer_ids(it) for it in items)
        row["final_loss"] = v.info()["final_loss"]
        rows.append(row)
    return rows

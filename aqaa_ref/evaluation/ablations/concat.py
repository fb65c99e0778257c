"""Multi-segment concatenation (paper Table 2): marker-preserving, marker removal, pre-interleaved."""
from __future__ import annotations

from aqaa_ref.data import multi_segment_test_items, strided
from aqaa_ref.evaluation.ablations.common import (AblationConfig, _answer_row, _builder, _eval_estimate,
                                                  _generate_cached, _sft_variant, train_variants)
from aqaa_ref.formats.parse import parse_answer
from aqaa_ref.training.loop import load_weights
from aqaa_ref.training.recipe import Assets, ensure_stage
from aqaa_ref.training.sequences import with_extra_clips


# ----------------------------------------------------------------------------- 2. concat

def _last_segment_acc(builder, items, answers) -> list[float]:
    """Per item: audio-token agreement of the answer's end with the last segment's reference rendering."""
    accs = []
    for it, ans in zip(items, answers):
        ref = builder.table.ids(it.answer_audio[-1].path)
        gen = parse_answer(ans, builder.vocab, builder.special).aligned_audio()
        accs.append(sum(a == b for a, b in zip(reversed(ref), reversed(gen))) / max(1, len(ref)))
    return accs


def concat_ablation(assets: Assets, cfg: AblationConfig, limit: int | None = None, progress: bool = True) -> list:
    """Table 2: multi-segment answers under each concatenation mode."""
    r = assets.recipe
    ensure_stage("pretrain", assets, progress)
    train_split = assets.corpus.split("train")
    multi = [it for it in train_split if it.is_multi_segment]
    items = multi + strided([it for it in train_split if not it.is_multi_segment], cfg.concat_single_items)
    # the test split's own multi-segment items, and cfg.multi_test_items more drawn alike
    test = [it for it in assets.corpus.split("test") if it.is_multi_segment]
    # (all of them unless --limit: cfg.limit's 64 would cut the few there are)
    test = strided(test + multi_segment_test_items(assets.corpus, cfg.multi_test_items, progress), limit)
    table = with_extra_clips(assets.table, assets.dual, assets.corpus, test, progress)
    builders = {m: _builder(assets, concat_mode=m, table=table) for m in cfg.concat_modes}
    variants = [_sft_variant(assets, "concat", m, builders[m], items, cfg.sft, r.aqta_fraction) for m in cfg.concat_modes]
    train_variants(variants, cfg, progress)
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
        row = {"variant": v.name, **_answer_row(b, test, ans)}
        last = _last_segment_acc(b, test, ans)
        row["last_segment_audio_acc"] = sum(last) / max(1, len(last))
        row["per_item"]["last_segment_audio_acc"] = last
        vrow = _answer_row(b, val, vans) if val else {}
        row.update({"val_n": len(val), "val_text_accuracy": vrow.get("text_accuracy"),
                    "val_audio_token_accuracy": vrow.get("audio_token_accuracy"),
                    "val_well_formed": vrow.get("well_formed"), "final_loss": v.info()["final_loss"]})
        rows.append(row)
    return rows

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
from aqaa_ref.formats.parse import parse_answer
from aqaa_ref.formats.text_tokenizer import decode_text
from aqaa_ref.inference.generation import normalize_answer
from aqaa_ref.metrics import per
from aqaa_ref.training.loop import load_weights
from aqaa_ref.training.recipe import Assets, ensure_stage
from aqaa_ref.training.sequences import with_extra_clips


def long_answer_scores(builder, items, answers) -> dict[str, list[float]]:
    """Partial credit for long answers, per item, where exact match is too strict to separate
    anything: ``word_accuracy`` = 1 - word error rate of the text channel against the reference
    text (floored at 0), ``audio_similarity`` = 1 - edit distance / length between the generated
    audio ids and the reference rendering's (floored at 0; unlike the position-wise
    ``audio_token_accuracy`` one inserted group does not shift every later token into a miss)."""
    words, audio = [], []
    for it, ans in zip(items, answers):
        p = parse_answer(ans, builder.vocab, builder.special)
        hyp = normalize_answer(decode_text(builder.tok, p.text_ids)).split()
        words.append(max(0.0, 1.0 - per(normalize_answer(it.answer_text).split(), hyp)))
        ref = [t for r in it.answer_audio for t in builder.table.ids(r.path)]
        audio.append(max(0.0, 1.0 - per(ref, p.aligned_audio())))
    return {"word_accuracy": words, "audio_similarity": audio}


def format_ablation(assets: Assets, cfg: AblationConfig, limit: int | None = None, progress: bool = True) -> list:
    """Table 1: SFT (``cfg.format_sft``) from pre-training once per answer format, on
    ``cfg.format_short_items`` strided train items plus ``cfg.long_train_items`` long answers;
    scored on strided test items plus ``cfg.long_test_items`` long ones (the long items decode up
    to ``cfg.long_max_new_tokens``)."""
    r = assets.recipe
    ensure_stage("pretrain", assets, progress)
    extra = long_answer_items(assets.corpus, cfg.long_train_items, cfg.long_test_items, progress) \
        if cfg.long_train_items or cfg.long_test_items else []
    long_train = [it for it in extra if it.split == "train"]
    long_test = strided([it for it in extra if it.split == "test"], limit)
    table = with_extra_clips(assets.table, assets.dual, assets.corpus, extra, progress)
    train_items = strided(assets.corpus.split("train"), cfg.format_short_items) + long_train
    builders = {f: _builder(assets, f, table=table) for f in cfg.formats}
    variants = [_sft_variant(assets, "format", f, builders[f], train_items, cfg.format_sft, r.aqta_fraction)
                for f in cfg.formats]
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
            for m, xs in long_answer_scores(b, long_test, lans).items():
                row[f"long_{m}"] = sum(xs) / len(xs)
                row["per_item"][f"long_{m}"] = xs
        if b.fmt.text_per_chunk == 0:                     # audio_only has no text channel
            for m in ("text_accuracy", "long_text_accuracy", "long_word_accuracy"):
                if m in row:
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

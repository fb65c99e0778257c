"""aqaa_ref.evaluation.ablations: every ablation runs end to end on the tiny preset, one row per variant,
served from its cache the second time; single-stream audio holds only its own ids."""
import pytest
import torch

import aqaa_ref.evaluation.ablations as ab
import aqaa_ref.evaluation.ablations.common as ab_common
import aqaa_ref.evaluation.ablations.dpo as ab_dpo
import aqaa_ref.training.recipe as recipe_mod
from aqaa_ref.__main__ import ABLATION_CHOICES, main
from aqaa_ref.formats.constrained import check_well_formed
from aqaa_ref.training.recipe import Assets, Recipe

ANSWER_CI = {"text_accuracy_ci", "audio_token_accuracy_ci"}
KEYS = {
    "format": {"variant", "n", "text_accuracy", "audio_token_accuracy", "well_formed", "answer_tokens",
               "reference_tokens", "differs_from_10_15", "final_loss", "long_n", "long_text_accuracy",
               "long_audio_token_accuracy", "long_well_formed", "long_word_accuracy", "long_audio_similarity"}
              | ANSWER_CI | {f"long_{m}_ci" for m in ("text_accuracy", "audio_token_accuracy", "word_accuracy",
                                                      "audio_similarity")},
    "concat": {"variant", "n", "text_accuracy", "audio_token_accuracy", "well_formed", "answer_tokens",
               "last_segment_audio_acc", "val_n", "val_text_accuracy", "val_audio_token_accuracy",
               "val_well_formed", "final_loss", "last_segment_audio_acc_ci"} | ANSWER_CI,
    "codebook": {"variant", "n", "ppl_text", "ppl_linguistic", "ppl_semantic", "ppl_audio",
                 "aqta_text_accuracy", "final_loss", "aqta_text_accuracy_ci"},
    "dpo": {"variant", "n", "text_accuracy", "audio_token_accuracy", "well_formed", "answer_tokens",
            "pairs", "text_margin", "pair_accuracy", "audio_logp"} | ANSWER_CI,
    "merge": {"variant", "n", "text_accuracy", "audio_token_accuracy", "well_formed", "answer_tokens"} | ANSWER_CI,
}
KEYS = {k: v | {"seeds", "per_item"} for k, v in KEYS.items()}
CFG = ab.AblationConfig.from_preset("tiny")
VARIANTS = {"format": list(CFG.formats), "concat": list(CFG.concat_modes), "codebook": list(CFG.streams),
            "dpo": ["sft1", "dpo_masked", "dpo_unmasked"],
            "merge": ["sft1", "sft2", "dpo", "merge_5_5_1", "merge_1_1_1"]}


@pytest.fixture(scope="module")
def assets():
    return Assets(Recipe.from_preset("tiny"), progress=False)   # the shared cached tiny corpus and stages


@pytest.fixture(scope="module")
def results(assets, tmp_path_factory):
    """Every ablation once, its variants and scores cached in a fresh folder."""
    root = tmp_path_factory.mktemp("ablations")
    mp = pytest.MonkeyPatch()
    mp.setattr(ab_common, "ablation_root", lambda recipe: root / recipe.name)
    out = ab.run_ablation("all", "tiny", progress=False, assets=assets)
    yield root, out
    mp.undo()


@pytest.mark.parametrize("name", ab.ABLATIONS)
def test_each_ablation_gives_one_row_per_variant(results, name):
    _, out = results
    rows = out[name]
    assert [r["variant"] for r in rows] == VARIANTS[name]
    for r in rows:
        assert set(r) == KEYS[name]
        for k, v in r.items():
            if k.endswith(("accuracy", "well_formed", "_acc")) and v is not None:
                assert 0.0 <= v <= 1.0
    if name == "format":        # audio_only has no text channel
        assert [r["text_accuracy"] is None for r in rows] == [f == "audio_only" for f in VARIANTS[name]]
    if name == "codebook":      # each single stream has no perplexity for the other stream
        by = {r["variant"]: r for r in rows}
        assert by["linguistic"]["ppl_semantic"] is None and by["semantic"]["ppl_linguistic"] is None
        assert all(by["dual"][k] > 1.0 for k in ("ppl_text", "ppl_linguistic", "ppl_semantic", "ppl_audio"))
        assert by["linguistic"]["ppl_audio"] == by["linguistic"]["ppl_linguistic"]


def test_trained_variants_are_cached_by_config(results):
    root, _ = results
    for name, n in (("format", len(CFG.formats)), ("concat", len(CFG.concat_modes)), ("codebook", 2 * len(CFG.streams))):
        dirs = [d for d in (root / "tiny" / name).iterdir() if (d / "done.json").exists()]
        assert len(dirs) == n, name
    assert any((root / "tiny" / "scores").glob("*.json"))


def test_second_call_trains_and_generates_nothing(results, assets, monkeypatch):
    root, first = results
    monkeypatch.setattr(ab_common, "ablation_root", lambda recipe: root / recipe.name)
    calls = []
    for mod, fn in ((ab_common, "train"), (recipe_mod, "train"), (ab_common, "generate_answers"),
                    (ab_dpo, "preference_metrics")):
        monkeypatch.setattr(mod, fn, lambda *a, _fn=fn, **k: calls.append(_fn) or pytest.fail(f"{_fn} called"))
    again = ab.run_ablation("all", "tiny", progress=False, assets=assets)
    assert calls == [] and again == first


def test_single_stream_sequences_hold_only_their_ids(assets):
    v = assets.vocab
    item = next(it for it in assets.corpus.split("train") if not it.is_multi_segment)
    n_audio = {}
    for stream in ("dual", "linguistic", "semantic"):
        b = ab.stream_builder(assets, stream)
        pre = b.pretrain_example("interleaved", "one", item.question_audio.path)
        ids = torch.tensor(b.sft_example(item)["input_ids"] + pre["input_ids"])
        n_l, n_s = int(v.is_linguistic(ids).sum()), int(v.is_semantic(ids).sum())
        assert (n_l > 0) == (stream != "semantic") and (n_s > 0) == (stream != "linguistic")
        assert not ((ids >= v.audio_end) | (ids < 0)).any()
        n_audio[stream] = (n_l, n_s)
        answer = b.answer_ids(item)
        assert check_well_formed(answer + [b.special.eot], b.fmt, v, b.special) == []
    # the same 120 ms groups in each variant: 2 L or 3 S per group
    assert n_audio["linguistic"] == (n_audio["dual"][0], 0) and n_audio["semantic"] == (0, n_audio["dual"][1])
    # 10 text : 6 L : 9 S per round keeps its 360 ms of audio with one stream
    fl = ab.single_stream_format(ab.get_format("ratio_10_15"), "linguistic")
    fs = ab.single_stream_format(ab.get_format("ratio_10_15"), "semantic")
    assert (fl.tri_codebook(), fl.group) == ((10, 6, 0), (2, 0))
    assert (fs.tri_codebook(), fs.group) == ((10, 0, 9), (0, 3))


def test_bad_names_are_refused(capsys):
    with pytest.raises(ValueError, match="unknown ablation 'bogus'"):
        ab.run_ablation("bogus", "tiny")
    with pytest.raises(ValueError, match="unknown ablation"):
        ab.paper_direction("bogus")
    with pytest.raises(ValueError, match="unknown ablation preset"):
        ab.AblationConfig.from_preset("huge")
    with pytest.raises(SystemExit) as e:
        main(["ablate", "bogus", "--preset", "tiny"])
    assert e.value.code == 2 and "invalid choice" in capsys.readouterr().err
    assert ABLATION_CHOICES == (*ab.ABLATIONS, "all")
    assert all(ab.paper_direction(n) for n in ab.ABLATIONS)


def test_cli_prints_the_table(results, monkeypatch, capsys):
    root, _ = results
    monkeypatch.setattr(ab_common, "ablation_root", lambda recipe: root / recipe.name)
    assert main(["ablate", "merge", "--preset", "tiny", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "paper: " + ab.PAPER["merge"] in out and "merge_5_5_1" in out


def test_table_is_aligned():
    rows = [{"variant": "a", "x": 0.5, "y": None}, {"variant": "longer", "x": 12.25, "y": 3}]
    lines = ab.format_table(rows).splitlines()
    assert len({len(l) for l in lines}) == 1 and "n/a" in lines[2] and "12.250" in lines[3]
    rows = [{"variant": "a", "acc": 0.5, "acc_ci": [0.25, 0.75], "acc_by_seed": [0.4, 0.6], "per_item": {"acc": [1.0]}}]
    head, _, body = ab.format_table(rows).splitlines()
    assert head.split() == ["variant", "acc", "acc_by_seed"]             # the interval shares the metric's cell
    assert "0.500 [0.250, 0.750]" in body and "0.400/0.600" in body and "per_item" not in head


def test_rows_carry_per_item_scores_and_intervals_around_their_means(results, assets):
    _, out = results
    for name in ab.ABLATIONS:
        for r in out[name]:
            assert r["seeds"] == 1
            for m, vals in r["per_item"].items():
                if not vals:                                   # audio_only's text channel
                    assert r[f"{m}_ci"] is None
                    continue
                n = r["long_n"] if m.startswith("long_") else r["n"]     # format's long answers alone
                assert len(vals) == n and r[m] == pytest.approx(sum(vals) / len(vals))
                lo, hi = r[f"{m}_ci"]
                assert lo <= r[m] + 1e-9 and r[m] <= hi + 1e-9
    fmt = {r["variant"]: r for r in out["format"]}
    assert fmt["ratio_10_15"]["differs_from_10_15"] == 0
    assert fmt["audio_only"]["differs_from_10_15"] == fmt["audio_only"]["n"]   # no text at all: every answer differs
    # the long answers are scored beside the test items, and text-CoT writes them differently
    assert fmt["ratio_10_15"]["long_n"] == CFG.long_test_items
    assert fmt["ratio_10_15"]["n"] == min(CFG.limit, len(assets.corpus.split("test"))) + CFG.long_test_items
    assert fmt["text_cot"]["differs_from_10_15"] >= CFG.long_test_items
    # the concat rows score the test split's multi-segment items plus the extra ones
    assert out["concat"][0]["n"] >= CFG.multi_test_items


def _row(variant, **per_item):
    return {"variant": variant, "n": len(next(iter(per_item.values()))),
            **{m: sum(v) / len(v) for m, v in per_item.items()}, "per_item": per_item}


def test_combine_seeds_averages_items_and_reports_each_seed():
    s0 = [_row("a", acc=[1.0, 0.0, 1.0, 1.0]), _row("b", acc=[0.0, 0.0, 1.0, 0.0])]
    s1 = [_row("a", acc=[1.0, 1.0, 1.0, 0.0]), _row("b", acc=[0.0, 0.0, 0.0, 0.0])]
    rows = ab.combine_seeds([s0, s1])
    a = rows[0]
    assert a["seeds"] == 2 and a["n"] == 4 and a["acc"] == pytest.approx(0.75)
    assert a["per_item"]["acc"] == [1.0, 0.5, 1.0, 0.5] and a["acc_by_seed"] == [0.75, 0.75]
    assert a["acc_ci"][0] <= 0.75 <= a["acc_ci"][1]
    assert rows[1]["acc_by_seed"] == [0.25, 0.0]
    one = ab.combine_seeds([s0])[0]
    assert "acc_by_seed" not in one and one["acc"] == 0.75
    with pytest.raises(ValueError, match="variant order"):
        ab.combine_seeds([s0, s1[::-1]])
    with pytest.raises(ValueError, match="same variants"):
        ab.combine_seeds([s0, s1[:1]])


def test_verdicts_follow_the_paired_interval(monkeypatch):
    monkeypatch.setitem(ab_common.CLAIMS, "toy_claims", [("a", ">", "b", "acc"), ("b", ">", "a", "acc"),
                                                         ("a", "~", "c", "acc"), ("a", ">", "c", "acc"),
                                                         ("a", ">", "missing", "acc")])
    g = torch.Generator().manual_seed(0)
    base = torch.rand(80, generator=g)
    noise = (torch.rand(80, generator=g) - 0.5) * 0.2
    rows = [_row("a", acc=(base + 0.1).tolist()), _row("b", acc=base.tolist()), _row("c", acc=(base + 0.1 + noise).tolist())]
    vs = {v["claim"]: v for v in ab.verdicts("toy_claims", rows)}
    assert vs["a > b"]["verdict"] == "reproduces" and vs["a > b"]["difference"] == pytest.approx(0.1)
    assert vs["b > a"]["verdict"] == "contradicts"
    assert vs["a ~ c"]["verdict"] == "no difference detected" and vs["a > c"]["verdict"] == "undecided"
    assert "a > missing" not in vs                                 # a variant the rows lack is skipped
    assert "reproduces" in ab.verdict_table(list(vs.values()))


def test_every_paper_claim_names_real_variants_and_metrics(results):
    _, out = results
    for name, claims in ab.CLAIMS.items():
        rows = {r["variant"]: r for r in out[name]}
        for a, rel, b, metric in claims:
            assert rel in (">", "~") and a in rows and b in rows, (name, a, b)
            assert metric in rows[a]["per_item"], (name, metric)
        assert len(ab.verdicts(name, out[name])) == len(claims)


def test_seed_zero_is_the_cached_config_and_other_seeds_train_apart(assets, results, monkeypatch):
    assert CFG.with_seed(0) == CFG
    s1 = CFG.with_seed(1)
    assert (s1.seed, s1.sft.seed, s1.format_sft.seed, s1.codebook_pretrain.seed, s1.codebook_sft.seed) == (1,) * 5
    root, first = results
    monkeypatch.setattr(ab_common, "ablation_root", lambda recipe: root / recipe.name)
    rows = ab.run_ablation("dpo", "tiny", progress=False, assets=assets, seeds=2)
    by = {r["variant"]: r for r in rows}
    seed0 = {r["variant"]: r for r in first["dpo"]}
    assert all(r["seeds"] == 2 for r in rows)
    for v, r in by.items():      # seed 0's mean is the single-seed run's (served from its cache)
        assert r["audio_token_accuracy_by_seed"][0] == pytest.approx(seed0[v]["audio_token_accuracy"])
    assert by["sft1"]["audio_token_accuracy_by_seed"][0] == by["sft1"]["audio_token_accuracy_by_seed"][1]
    with pytest.raises(ValueError, match="seeds"):
        ab.run_ablation("dpo", "tiny", assets=assets, seeds=0)


def test_multi_segment_test_items_are_new_switches_in_three_conditions(assets):
    from aqaa_ref.data import multi_segment_test_items

    items = multi_segment_test_items(assets.corpus, 6, progress=False)
    assert len(items) == 6 and all(it.is_multi_segment and it.split == "test" for it in items)
    assert [it.condition for it in items] == ["seen", "unseen_voice", "unseen_prosody"] * 2
    known = {(it.question.key(), it.instruction) for it in assets.corpus.items}
    assert not any((it.question.key(), it.instruction) in known for it in items)
    assert len({it.id for it in items}) == 6
    assert all((assets.corpus.root / r.path).exists() for it in items for r in (it.question_audio, *it.answer_audio))
    again = multi_segment_test_items(assets.corpus, 6, progress=False)
    assert [it.to_dict() for it in again] == [it.to_dict() for it in items]      # read back, not redrawn
    assert not any(it.id.startswith("test-multi") for it in assets.corpus.split("test"))   # the test split is as it was


def test_extra_clips_are_encoded_once_and_match_a_direct_encoding(assets, monkeypatch, tmp_path):
    from aqaa_ref.data import long_answer_items
    from aqaa_ref.training.sequences import with_extra_clips

    monkeypatch.setenv("AQAA_CACHE", str(tmp_path))          # a fresh code cache
    items = long_answer_items(assets.corpus, 2, 1, progress=False)
    table = with_extra_clips(assets.table, assets.dual, assets.corpus, items, progress=False)
    clip = items[0].answer_audio[0].path
    lc, sc = assets.dual.encode_batch([assets.corpus.load(clip)], progress=False)[0]
    assert table.codes[clip] == (lc.tolist(), sc.tolist())
    assert set(assets.table.codes) < set(table.codes) and clip not in assets.table.codes
    monkeypatch.setattr(assets.dual, "encode_batch", lambda *a, **k: pytest.fail("encoded twice"))
    again = with_extra_clips(assets.table, assets.dual, assets.corpus, items, progress=False)
    assert again.codes == table.codes


def test_long_answer_scores_give_partial_credit(assets):
    from aqaa_ref.data import long_answer_items
    from aqaa_ref.evaluation.ablations.format import long_answer_scores
    from aqaa_ref.training.sequences import with_extra_clips

    items = [it for it in long_answer_items(assets.corpus, 2, 1, progress=False) if it.split == "train"]
    b = ab_common._builder(assets, "ratio_10_15",
                           table=with_extra_clips(assets.table, assets.dual, assets.corpus, items, progress=False))
    eot = b.special.eot
    exact = [b.answer_ids(it) + [eot] for it in items]
    assert long_answer_scores(b, items, exact) == {"word_accuracy": [1.0, 1.0], "audio_similarity": [1.0, 1.0]}
    swapped = long_answer_scores(b, items, exact[::-1])                   # each the other's answer
    assert all(0.0 <= x < 1.0 for xs in swapped.values() for x in xs)
    half = b.answer_ids(items[0])                                        # the answer cut short
    half = long_answer_scores(b, items[:1], [half[:len(half) // 2]])
    assert 0.0 < half["audio_similarity"][0] < 1.0
    assert long_answer_scores(b, items[:1], [[eot]]) == {"word_accuracy": [0.0], "audio_similarity": [0.0]}


def test_cli_refuses_zero_seeds(capsys):
    assert main(["ablate", "dpo", "--preset", "tiny", "--seeds", "0"]) == 2
    assert "--seeds must be at least 1" in capsys.readouterr().err

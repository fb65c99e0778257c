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

KEYS = {
    "format": {"variant", "n", "text_accuracy", "audio_token_accuracy", "well_formed", "answer_tokens",
               "reference_tokens", "final_loss"},
    "concat": {"variant", "n", "text_accuracy", "audio_token_accuracy", "well_formed", "answer_tokens",
               "last_segment_audio_acc", "val_n", "val_text_accuracy", "val_audio_token_accuracy",
               "val_well_formed", "final_loss"},
    "codebook": {"variant", "n", "ppl_text", "ppl_linguistic", "ppl_semantic", "ppl_audio",
                 "aqta_text_accuracy", "final_loss"},
    "dpo": {"variant", "n", "text_accuracy", "audio_token_accuracy", "well_formed", "answer_tokens",
            "pairs", "text_margin", "pair_accuracy", "audio_logp"},
    "merge": {"variant", "n", "text_accuracy", "audio_token_accuracy", "well_formed", "answer_tokens"},
}
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

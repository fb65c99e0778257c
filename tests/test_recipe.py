"""aqaa_ref.training.recipe: the stage chain runs end to end on the tiny preset and caches by config."""
import json
from dataclasses import replace

import pytest
import torch

from aqaa_ref.backbone.model import Step1Config
from aqaa_ref.training.recipe import STAGES, Assets, Recipe, run_recipe


def test_changing_one_stage_changes_only_what_depends_on_it():
    base = Recipe.from_preset("tiny")
    keys = {s: base.stage_key(s) for s in STAGES}
    sft2 = replace(base, sft2=replace(base.sft2, lr=1e-4))
    assert {s for s in STAGES if sft2.stage_key(s) != keys[s]} == {"sft2", "merge"}
    dpo = replace(base, dpo_beta=0.5)
    assert {s for s in STAGES if dpo.stage_key(s) != keys[s]} == {"dpo", "merge"}
    pre = replace(base, pretrain=replace(base.pretrain, steps=5))
    assert {s for s in STAGES if pre.stage_key(s) != keys[s]} == set(STAGES)
    merge = replace(base, merge_weights=(1.0, 1.0, 1.0))
    assert {s for s in STAGES if merge.stage_key(s) != keys[s]} == {"merge"}


def test_added_recipe_fields_at_their_defaults_keep_the_keys():
    base = Recipe.from_preset("tiny")
    keys = {s: base.stage_key(s) for s in STAGES}
    assert {s: replace(base, dpo_max_pairs=None, tokenizer_source=None, dpo_rejected="synthetic",
                       dpo_own_items=1200).stage_key(s) for s in STAGES} == keys
    few = replace(base, dpo_max_pairs=8)
    assert {s for s in STAGES if few.stage_key(s) != keys[s]} == {"dpo", "merge"}
    shipped = replace(base, tokenizer_source="shipped-0123456789ab")
    assert all(shipped.stage_key(s) != keys[s] for s in STAGES)


def test_a_changed_tokenizer_setting_reruns_every_stage():
    base = Recipe.from_preset("tiny")
    keys = {s: base.stage_key(s) for s in STAGES}
    tok = base.tokenizer
    changed = replace(base, tokenizer=replace(tok, linguistic=replace(tok.linguistic, codebook_size=32)))
    assert all(changed.stage_key(s) != keys[s] for s in STAGES)


def test_the_backbone_is_a_step1_config_whose_vocab_follows_the_tokenizer():
    r = Recipe.from_preset("tiny")
    assert isinstance(r.backbone, Step1Config) and r.backbone.hidden_size == 32
    assert r.backbone.vocab_size == r.tokenizer.vocab.size == 300 + 16 + 16
    wider = replace(r, tokenizer=replace(r.tokenizer, text_vocab_size=400))
    assert wider.backbone.vocab_size == 400 + 16 + 16 and wider.backbone.hidden_size == 32
    # the key hashes Step-1's own fields only: transformers' generic config fields (its
    # version, dtype, ...) do not enter it, so a lock refresh does not retrain the models
    assert set(r.stage_config("pretrain")["backbone"]) == set(Step1Config.__annotations__)
    assert "transformers_version" not in r.stage_config("pretrain")["backbone"]


def test_strided_subsets_cover_the_split():
    from aqaa_ref.data import strided

    items = [f"{fam}-{k}" for fam in "abcdefg" for k in range(10)]
    sub = strided(items, 7)
    assert len(sub) == 7 and {x[0] for x in sub} == set("abcdefg")
    assert strided(items, None) == items and strided(items, 500) == items


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("AQAA_CACHE", str(tmp_path_factory.mktemp("cache")))
    recipe = Recipe.from_preset("tiny")
    assets = Assets(recipe, progress=False)
    out = run_recipe(recipe, progress=False, assets=assets)
    yield recipe, assets, out
    mp.undo()


def test_every_stage_runs_and_records_its_result(tiny_run):
    recipe, assets, out = tiny_run
    assert list(out) == list(STAGES)
    for s in ("pretrain", "sft1", "sft2", "dpo"):
        assert out[s]["examples"] > 0 and len(out[s]["losses"]) == getattr(recipe, s).steps
        assert (recipe.stage_dir(s) / "done.json").exists()
    assert out["sft2"]["items"] <= out["sft1"]["items"]
    assert out["dpo"]["pairs"] > 0


def test_rerun_is_served_from_the_cache(tiny_run):
    recipe, assets, out = tiny_run
    stamps = {s: (recipe.stage_dir(s) / "done.json").stat().st_mtime_ns for s in STAGES}
    again = run_recipe(recipe, progress=False, assets=assets)
    assert again == json.loads(json.dumps(out))
    assert stamps == {s: (recipe.stage_dir(s) / "done.json").stat().st_mtime_ns for s in STAGES}


def test_only_the_changed_stage_reruns(tiny_run):
    recipe, assets, out = tiny_run
    changed = replace(recipe, sft2=replace(recipe.sft2, lr=1e-3))
    assets.recipe = changed
    try:
        res = run_recipe(changed, progress=False, assets=assets)
    finally:
        assets.recipe = recipe
    for s in ("pretrain", "sft1", "dpo"):
        assert res[s] == out[s]                                   # reused
    assert changed.stage_dir("sft2") != recipe.stage_dir("sft2")  # a new result for the changed stage
    assert (changed.stage_dir("merge") / "model.safetensors").exists()


def test_dpo_max_pairs_trains_on_a_seeded_subset(tiny_run):
    from aqaa_ref.training.recipe import run_stage

    recipe, assets, out = tiny_run
    few = assets.variant(dpo_max_pairs=3)
    info = run_stage("dpo", few, progress=False)
    assert info["pairs"] == 3 < out["dpo"]["pairs"] and info["key"] != out["dpo"]["key"]


def test_dpo_on_sft1s_own_wrong_answers(tiny_run):
    from aqaa_ref.training.recipe import run_stage

    recipe, assets, out = tiny_run
    own = assets.variant(dpo_rejected="own", dpo_own_items=6)
    info = run_stage("dpo", own, progress=False)
    # a 6-step SFT-1 is wrong on nearly everything: each of the 6 questions gives a pair at most
    assert 0 < info["own_pairs"] == info["pairs"] <= 6 and info["key"] != out["dpo"]["key"]
    both = run_stage("dpo", assets.variant(dpo_rejected="both", dpo_own_items=6), progress=False)
    assert both["pairs"] == out["dpo"]["pairs"] + both["own_pairs"]
    with pytest.raises(ValueError, match="dpo_rejected must be one of"):
        assets.variant(dpo_rejected="sampled")


def test_merge_is_the_weighted_average_of_its_parents(tiny_run):
    recipe, assets, _ = tiny_run
    m = assets.load_stage("merge").state_dict()
    parts = [assets.load_stage(s).state_dict() for s in ("sft1", "sft2", "dpo")]
    k = "model.layers.0.mlp.up_proj.weight"
    w = recipe.merge_weights
    assert torch.allclose(m[k], sum(wi * p[k] for wi, p in zip(w, parts)) / sum(w), atol=1e-6)


def test_constrained_answers_from_a_trained_stage_are_well_formed(tiny_run):
    from aqaa_ref.inference.generation import answer_items, score_answers, summarize

    recipe, assets, _ = tiny_run
    items = assets.corpus.split("test")[:6]
    model = assets.load_stage("merge")
    answers = answer_items(model, assets.builder, items, batch_size=3)
    scores = score_answers(assets.builder, items, answers)
    from aqaa_ref.formats.constrained import check_well_formed
    for a in answers:  # a barely trained model may run out of tokens: still a prefix of a valid answer
        assert check_well_formed(a, assets.builder.fmt, assets.vocab, assets.builder.special, require_end=False) == []
        assert len(a) <= 256
    s = summarize(scores)
    assert s["n"] == 6 and 0.0 <= s["audio_token_accuracy"] <= 1.0
    text_only = answer_items(model, assets.builder, items[:2], output="text")
    assert all(not assets.vocab.is_audio(t) for a in text_only for t in a)

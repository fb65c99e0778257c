"""aqaa_ref.checkpoints: export -> from_pretrained gives the recipe's answers; bad files are one-line errors."""
import json
import shutil
from dataclasses import replace

import pytest
import torch

from aqaa_ref import checkpoints as ck
from aqaa_ref.__main__ import main
from aqaa_ref.data.samples import load_samples
from aqaa_ref.inference.pipeline import AQAA
from aqaa_ref.training.recipe import Recipe


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The tiny recipe, trained (or cached), exported in float32 and in float16."""
    from aqaa_ref.data import build_corpus
    from aqaa_ref.evaluation.judges import Judges

    recipe = Recipe.from_preset("tiny")
    aqaa = AQAA.from_recipe(recipe, progress=False)
    Judges.load_or_train(build_corpus(recipe.corpus, progress=False), "tiny", progress=False)
    root = tmp_path_factory.mktemp("shipped")
    out = {}
    for dtype in (torch.float32, torch.float16):
        folder = root / str(dtype).replace("torch.", "")
        out[dtype] = (folder, ck.export(recipe, folder, judges_preset="tiny", dtype=dtype,
                                        provenance={"note": "test"}, progress=False))
    return recipe, aqaa, out


def test_the_layout_is_complete_and_sized(exported):
    _, _, out = exported
    folder, sizes = out[torch.float16]
    for rel in ("aqaa.json", "provenance.json", "text_tokenizer/tokenizer.json", "dual_tokenizer/weights.safetensors",
                "backbone/merge.json", "vocoder/flow/model.safetensors",
                "vocoder/mel2wav/model.safetensors", "judges/recognizer/model.safetensors",
                "judges/classifiers/classifiers.safetensors", *(f"backbone/{s}/model.safetensors" for s in ck.SHIPPED_STAGES),
                *(f"backbone/{s}/config.json" for s in ck.SHIPPED_STAGES)):
        assert (folder / rel).is_file(), rel
    assert not list(folder.rglob("*.bin")) and not list(folder.rglob("*.pt")) and not list(folder.rglob("*.pkl"))
    assert sizes["total"] == sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    # float16 halves the weights
    assert sizes["backbone/sft1"] < 0.6 * out[torch.float32][1]["backbone/sft1"]
    prov = json.loads((folder / "provenance.json").read_text())
    assert prov["note"] == "test" and set(prov["stage_keys"]) == {"pretrain", "sft1", "sft2", "dpo", "merge"}


def test_from_pretrained_answers_exactly_as_the_recipe_path(exported):
    _, aqaa, out = exported
    shipped = AQAA.from_pretrained(out[torch.float32][0])
    half = AQAA.from_pretrained(out[torch.float16][0])
    for s in load_samples()[:3]:
        ref = aqaa.answer(s["path"], instruction=s.get("instruction"))
        got = shipped.answer(s["path"], instruction=s.get("instruction"))
        assert got.ids == ref.ids and torch.equal(got.wav, ref.wav)
        assert half.answer(s["path"], instruction=s.get("instruction")).question_ids == ref.question_ids


def test_every_stage_and_the_judges_load_on_their_own(exported):
    recipe, aqaa, out = exported
    folder = out[torch.float32][0]
    for stage in ck.SHIPPED_STAGES:
        m = ck.load_backbone(folder, stage)
        assert not m.training and m.config.vocab_size == recipe.backbone.vocab_size
    with pytest.raises(ck.CheckpointError, match="no backbone stage 'sft3'"):
        ck.load_backbone(folder, "sft3")
    judges = ck.load_judges(folder)
    assert judges.recognizer.phonemes and judges.voice.classes


@pytest.mark.parametrize("damage, match", [
    ("delete", "missing"), ("truncate", "truncated or corrupt"), ("garble_json", "not valid JSON")])
def test_a_damaged_file_is_a_one_line_error_naming_it(exported, tmp_path, damage, match):
    src = exported[2][torch.float16][0]
    folder = tmp_path / "copy"
    shutil.copytree(src, folder)
    target = folder / ("vocoder/flow/config.json" if damage == "garble_json" else "vocoder/flow/model.safetensors")
    if damage == "delete":
        target.unlink()
    elif damage == "truncate":
        target.write_bytes(target.read_bytes()[:1000])
    else:
        target.write_text(target.read_text()[:40])
    with pytest.raises(ck.CheckpointError, match=match) as e:
        AQAA.from_pretrained(folder)
    assert str(target) in str(e.value) and "\n" not in str(e.value)


def test_the_cli_refuses_a_folder_that_is_not_shipped(tmp_path, capsys):
    q = load_samples()[0]["path"]
    assert main(["answer", str(q), "--preset", "tiny", "--checkpoints", str(tmp_path), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a shipped checkpoint folder" in err[0]


def test_export_refuses_untrained_stages(tmp_path):
    untrained = replace(Recipe.from_preset("tiny"), dpo_beta=0.37)
    with pytest.raises(ck.CheckpointError, match="dpo, merge .* not trained"):
        ck.export(untrained, tmp_path / "x", progress=False)


def test_assets_on_a_shipped_folder_use_its_tokenizers_under_their_own_keys(exported):
    """Assets(recipe, pretrained=folder): the shipped tokenizers, not retrained; stages trained on
    them, and their cached audio codes, are keyed apart from the recipe's own."""
    from aqaa_ref.training.recipe import Assets

    recipe, _, out = exported
    folder = out[torch.float16][0]
    own, shipped = Assets(recipe, progress=False), Assets(recipe, progress=False, pretrained=folder)
    assert own.dual.source is None and shipped.dual.source.startswith("shipped-")
    assert shipped.recipe.tokenizer_source == shipped.dual.source and recipe.tokenizer_source is None
    for stage in ("pretrain", "sft1"):
        assert shipped.recipe.stage_key(stage) != recipe.stage_key(stage)
    assert own.recipe.stage_key("pretrain") == recipe.stage_key("pretrain")
    assert shipped.tok.get_vocab() == own.tok.get_vocab()
    # float32 export: the same weights, the same codes (a separate cache entry all the same)
    same = Assets(recipe, progress=False, pretrained=out[torch.float32][0])
    clip = sorted(own.table.codes)[0]
    assert same.table.codes[clip] == own.table.codes[clip]
    # the shipped stages' training records travel with them
    rec = ck.load_training(folder, "sft1")
    assert rec["losses"] and len(rec["losses"]) == recipe.sft1.steps and rec["seconds"] > 0


def test_int8_storage_round_trips_within_half_a_step_per_row(tmp_path):
    torch.manual_seed(0)
    w = torch.randn(6, 5, 3) * torch.tensor([1e-3, 0.1, 1, 10, 0, 3]).view(6, 1, 1)   # one row all zero
    q, scale = ck.quantize_int8(w)
    assert q.dtype == torch.int8 and scale.shape == (6, 1, 1) and q.abs().max() <= 127
    err = (ck.dequantize_int8(q, scale) - w).abs()
    assert (err <= scale.float() / 2 + 1e-3 * scale.float() + 1e-9).all()
    assert torch.equal(ck.dequantize_int8(q, scale)[4], torch.zeros(5, 3))
    path = tmp_path / "m.safetensors"
    tensors = {"conv.weight": w, "conv.bias": torch.randn(6), "steps": torch.tensor([3])}
    ck.write_safetensors(path, tensors, int8=True)
    back = ck.read_safetensors(path)
    assert set(back) == set(tensors) and back["steps"].dtype == torch.int64
    assert torch.allclose(back["conv.weight"], w, atol=scale.float().max().item())
    assert torch.equal(back["conv.bias"], tensors["conv.bias"].half().float())      # 1-d: float16, not int8
    # int8 storage: a quarter of float32's bytes for the matrices
    ck.write_safetensors(tmp_path / "f32.safetensors", {"w": torch.randn(256, 256)}, dtype=torch.float32)
    ck.write_safetensors(tmp_path / "i8.safetensors", {"w": torch.randn(256, 256)}, int8=True)
    assert (tmp_path / "i8.safetensors").stat().st_size < 0.27 * (tmp_path / "f32.safetensors").stat().st_size


def test_an_int8_tensor_without_its_scale_is_a_one_line_error(tmp_path):
    from safetensors.torch import save_file

    save_file({"w" + ck.INT8: torch.zeros(2, 2, dtype=torch.int8)}, str(tmp_path / "m.safetensors"))
    with pytest.raises(ck.CheckpointError, match=r"m\.safetensors: w is stored in int8 without"):
        ck.read_safetensors(tmp_path / "m.safetensors")


def test_the_flow_vocoder_is_stored_in_int8_by_default_and_float16_is_an_option(exported, tmp_path):
    recipe, _, out = exported
    assert json.loads((out[torch.float16][0] / "aqaa.json").read_text())["int8"] == ["vocoder/flow"]
    assert json.loads((out[torch.float32][0] / "aqaa.json").read_text())["int8"] == []   # float32: no int8
    from safetensors import safe_open

    with safe_open(str(out[torch.float16][0] / "vocoder/flow/model.safetensors"), "pt") as f:
        keys = list(f.keys())
    assert any(k.endswith(ck.INT8) for k in keys) and any(k.endswith(ck.SCALE) for k in keys)
    folder = tmp_path / "f16"
    ck.export(recipe, folder, dtype=torch.float16, int8=(), progress=False)
    assert json.loads((folder / "aqaa.json").read_text())["int8"] == []
    assert out[torch.float16][1]["vocoder/flow"] < 0.6 * ck.folder_sizes(folder)["vocoder/flow"]
    ck.load_vocoder(out[torch.float16][0])                    # dequantized on load
    with pytest.raises(ValueError, match="int8 storage is offered for"):
        ck.export(recipe, tmp_path / "bad", int8=("backbone/sft1",), progress=False)


def test_store_int8_requantizes_a_float16_folder_in_place(exported, tmp_path):
    recipe, _, out = exported
    folder = tmp_path / "f16"
    ck.export(recipe, folder, dtype=torch.float16, int8=(), progress=False)
    f16 = ck.load_vocoder(folder).flow.state_dict()
    sizes = ck.store_int8(folder, ["vocoder/flow"], record={"why": "test"})
    assert json.loads((folder / "aqaa.json").read_text())["int8"] == ["vocoder/flow"]
    assert json.loads((folder / "provenance.json").read_text())["int8_storage"] == {"why": "test"}
    assert sizes["vocoder/flow"] == out[torch.float16][1]["vocoder/flow"]   # the same layout as export's int8
    q8 = ck.load_vocoder(folder).flow.state_dict()
    # within half a quantization step per row, plus what storing the scale in float16 costs
    # (q <= 127 times the scale's rounding, 2**-11 of it)
    for k, w in f16.items():
        if w.dim() >= 2:
            step = w.abs().flatten(1).amax(1) / 127
            assert ((q8[k] - w).abs().flatten(1).amax(1) <= step * (0.5 + 127 * 2**-11) + 1e-8).all(), k
        else:
            assert torch.equal(q8[k], w), k
    again = ck.store_int8(folder, ["vocoder/flow"])           # already int8: left as it is
    assert again == sizes
    with pytest.raises(ValueError, match="int8 storage is offered for"):
        ck.store_int8(folder, ["backbone/sft1"])
    assert main(["store-int8", str(folder), "vocoder/mel2wav"]) == 0
    assert json.loads((folder / "aqaa.json").read_text())["int8"] == ["vocoder/flow", "vocoder/mel2wav"]


def test_a_variant_trains_only_the_stages_it_changes_and_loads_the_rest_from_the_folder(exported, tmp_path, monkeypatch):
    from aqaa_ref.training.recipe import Assets, run_stage

    recipe, _, out = exported
    folder = out[torch.float32][0]
    assets = Assets(recipe, progress=False, pretrained=folder)
    assert all(assets.is_shipped(s) for s in ("pretrain", "sft1", "sft2", "dpo", "merge"))
    with pytest.raises(ValueError, match="stage 'sft1' is shipped in"):
        run_stage("sft1", assets, progress=False)
    unmasked = assets.variant(dpo_masked=False)
    assert unmasked.is_shipped("sft1") and not unmasked.is_shipped("dpo") and not unmasked.is_shipped("merge")
    assert assets.recipe.dpo_masked and unmasked.corpus is assets.corpus
    sft1 = unmasked.load_stage("sft1")
    ref = ck.load_backbone(folder, "sft1")
    assert all(torch.equal(a, b) for a, b in zip(sft1.state_dict().values(), ref.state_dict().values()))
    info = run_stage("dpo", unmasked, progress=False)         # trained from the shipped SFT-1, cached
    assert info["key"] == unmasked.recipe.stage_key("dpo") != assets.recipe.stage_key("dpo")
    with pytest.raises(ValueError, match="build Assets for a new recipe"):
        assets.variant(format="text_cot")


def test_the_cli_offers_exactly_the_int8_components_the_library_stores():
    from aqaa_ref.__main__ import INT8_CHOICES

    assert INT8_CHOICES == ck.INT8_OPTIONS


def test_retrain_flow_replaces_only_the_flow_and_records_how(exported, tmp_path, capsys):
    recipe, _, out = exported
    folder = tmp_path / "shipped"
    shutil.copytree(out[torch.float16][0], folder)
    before = {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    old = ck.load_vocoder(folder).flow
    sizes = ck.retrain_flow(folder, ["steps=25"], preset="tiny", record={"why": "test"}, progress=False)
    new = ck.load_vocoder(folder).flow
    assert (old.cfg.steps, new.cfg.steps) == (recipe.vocoder.steps, 25)
    assert any(not torch.equal(a, b) for a, b in zip(old.state_dict().values(), new.state_dict().values()))
    changed = {p for p, b in before.items() if (folder / p).read_bytes() != b}
    assert {str(p) for p in changed} <= {"vocoder/flow/model.safetensors", "vocoder/flow/config.json", "provenance.json"}
    prov = json.loads((folder / "provenance.json").read_text())
    assert prov["flow"]["overrides"] == ["steps=25"] and prov["flow"]["why"] == "test"
    assert prov["flow"]["stored"] == "int8 from float32" and prov["note"] == "test"      # the rest kept
    weights = folder / "vocoder/flow/model.safetensors"                                  # same shapes, same bytes
    assert weights.stat().st_size == (out[torch.float16][0] / "vocoder/flow/model.safetensors").stat().st_size
    assert sizes["total"] == ck.folder_sizes(folder)["total"]
    assert main(["retrain-flow", str(tmp_path / "nope"), "--set", "steps=3", "--preset", "tiny"]) == 2
    assert "not a shipped checkpoint folder" in capsys.readouterr().err
    assert main(["retrain-flow", str(folder), "--set", "stepz=3", "--preset", "tiny", "--quiet"]) == 2
    assert "stepz" in capsys.readouterr().err

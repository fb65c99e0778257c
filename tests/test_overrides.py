"""--set KEY=VALUE: validated overrides of the recipe that enter the cache keys."""
import dataclasses
from pathlib import Path

import pytest

from aqaa_ref.__main__ import main
from aqaa_ref.overrides import apply_overrides
from aqaa_ref.training.recipe import Recipe
from aqaa_ref.vocoder import VocoderConfig

VOCODER_FIELDS = [f.name for f in dataclasses.fields(VocoderConfig)]


@pytest.fixture(scope="module")
def tiny():
    return Recipe.from_preset("tiny")


def test_nested_top_level_tuple_dict_and_vocoder_settings(tiny):
    r = apply_overrides(tiny, ["sft1.lr=1e-3", "dpo_beta=0.2", "merge_weights=4,4,2", "backbone.hidden_size=48",
                               "vocoder.steps=17", "dpo_masked=false", "corpus.seed=3", "tokenizer.linguistic.steps=31"])
    assert r.sft1.lr == 1e-3 and r.dpo_beta == 0.2 and r.merge_weights == (4.0, 4.0, 2.0)
    assert r.backbone.hidden_size == 48 and r.vocoder.steps == 17 and r.dpo_masked is False
    assert r.corpus.seed == 3 and r.tokenizer.linguistic.steps == 31
    assert r.stage_key("pretrain") != tiny.stage_key("pretrain")       # other codes: every stage re-runs
    assert tiny.sft1.lr != 1e-3 and tiny.vocoder.steps != 17          # the original is untouched


def test_overrides_enter_the_cache_keys_of_what_depends_on_them(tiny):
    r = apply_overrides(tiny, ["sft2.lr=1e-3"])
    assert r.stage_key("pretrain") == tiny.stage_key("pretrain") and r.stage_key("sft1") == tiny.stage_key("sft1")
    assert r.stage_key("sft2") != tiny.stage_key("sft2") and r.stage_key("merge") != tiny.stage_key("merge")
    assert apply_overrides(tiny, ["sft2.lr=" + repr(tiny.sft2.lr)]).stage_key("merge") == tiny.stage_key("merge")


@pytest.mark.parametrize("item, message", [
    ("sft1.lrr=1", "--set sft1.lrr: TrainConfig has no setting 'lrr'"),
    ("nope=1", "--set nope: Recipe has no setting 'nope'"),
    ("sft1.steps=many", "--set sft1.steps: expected an integer, got 'many'"),
    ("sft1.lr=fast", "--set sft1.lr: expected a number, got 'fast'"),
    ("dpo_masked=maybe", "--set dpo_masked: expected true or false, got 'maybe'"),
    ("backbone.width=3", "--set backbone.width: Step1Config has no setting 'width' (known: vocab_size, hidden_size"),
    ("sft1.lr", "expected KEY=VALUE"),
])
def test_bad_overrides_are_one_line_errors_naming_the_key(tiny, item, message):
    with pytest.raises(ValueError) as e:
        apply_overrides(tiny, [item])
    assert message in str(e.value) and "\n" not in str(e.value)


def test_cli_refuses_a_bad_override_before_training(capsys):
    assert main(["train", "--preset", "tiny", "--set", "sft1.lrr=1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --set sft1.lrr: TrainConfig has no setting 'lrr'") and "\n" not in err


QUESTION = str(Path(__file__).resolve().parent.parent / "data_samples" / "q00_logical_reasoning_en_seen.wav")


@pytest.mark.parametrize("command", [["demo"], ["eval"], ["answer", QUESTION]])
def test_every_model_command_takes_and_validates_set(command, capsys):
    assert main([*command, "--preset", "tiny", "--set", "vocoder.stepz=1"]) == 2
    assert capsys.readouterr().err.strip() == ("error: --set vocoder.stepz: VocoderConfig has no setting 'stepz' "
                                               "(known: " + ", ".join(VOCODER_FIELDS) + ")")

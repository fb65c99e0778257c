"""The one preset table: every component's presets build through ``from_preset``."""
import pytest

from aqaa_ref.backbone.model import Step1Config
from aqaa_ref.data import CorpusConfig
from aqaa_ref.evaluation.ablations import AblationConfig
from aqaa_ref.evaluation.judges import JudgesConfig
from aqaa_ref.evaluation.recognizer import RecognizerConfig
from aqaa_ref.presets import PRESETS, preset
from aqaa_ref.tokenizer import DualConfig
from aqaa_ref.tokenizer.linguistic import LinguisticConfig
from aqaa_ref.tokenizer.semantic import SemanticConfig
from aqaa_ref.training.recipe import Recipe
from aqaa_ref.vocoder import Mel2WavConfig, VocoderConfig

BUILD = {
    "corpus": CorpusConfig.from_preset,
    "linguistic": LinguisticConfig.from_preset,
    "semantic": SemanticConfig.from_preset,
    "dual": DualConfig.from_preset,
    "backbone": lambda name: Step1Config.from_preset(name, vocab_size=1000),
    "recipe": Recipe.from_preset,
    "vocoder": VocoderConfig.from_preset,
    "mel2wav": Mel2WavConfig.from_preset,
    "recognizer": RecognizerConfig.from_preset,
    "judges": JudgesConfig.from_preset,
    "ablation": AblationConfig.from_preset,
}


def test_the_table_covers_every_component_from_tiny_to_the_paper():
    assert set(BUILD) == set(PRESETS)
    for component, table in PRESETS.items():
        assert "toy" in table, component
        assert "tiny" in table or component == "backbone", component
    assert {"100m", "1b", "step-audio-130b"} <= set(PRESETS["backbone"])
    assert all("paper" in PRESETS[c] for c in ("linguistic", "semantic", "dual", "vocoder", "mel2wav", "recognizer"))


@pytest.mark.parametrize("component, name", [(c, n) for c in BUILD for n in PRESETS[c]])
def test_every_preset_builds_and_carries_its_table_row(component, name):
    cfg = BUILD[component](name)
    for key, value in preset(component, name).items():
        got = getattr(cfg, key)
        if isinstance(value, dict) and not isinstance(got, dict):    # nested configs are dicts in the table
            assert all(getattr(got, k) == v for k, v in value.items() if k != "preset"), (component, name, key)
        else:
            assert got == value or (value != value and got != got), (component, name, key)


def test_toy_rows_are_the_config_defaults():
    assert CorpusConfig.from_preset("toy") == CorpusConfig(name="toy")
    assert Recipe.from_preset("toy") == Recipe()
    assert AblationConfig.from_preset("toy") == AblationConfig()
    assert RecognizerConfig.from_preset("toy") == RecognizerConfig(name="toy")


def test_unknown_presets_are_one_line_errors():
    with pytest.raises(ValueError, match="unknown vocoder preset 'huge'; known: tiny, toy, paper"):
        VocoderConfig.from_preset("huge")
    with pytest.raises(ValueError, match="unknown component"):
        preset("nope", "toy")


def test_preset_returns_a_copy():
    preset("vocoder", "tiny")["unet"]["channels"] = (1,)
    assert PRESETS["vocoder"]["tiny"]["unet"]["channels"] == (32, 48)

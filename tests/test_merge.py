"""Checkpoint merge: identity on copies, normalised weights, refusal of other architectures."""
import pytest
import torch
from safetensors.torch import save_file

from aqaa_ref.backbone.model import Step1Config, Step1ForCausalLM
from aqaa_ref.training.merge import PAPER_WEIGHTS, merge_checkpoints, merge_state_dicts


def sd(seed, hidden=16):
    torch.manual_seed(seed)
    cfg = Step1Config(vocab_size=20, hidden_size=hidden, intermediate_size=32, num_attention_heads=2,
                      num_attention_groups=1, num_hidden_layers=1)
    return Step1ForCausalLM(cfg).state_dict()


def test_merging_identical_checkpoints_is_the_identity():
    a = sd(0)
    out = merge_state_dicts([a, a, a], PAPER_WEIGHTS)
    assert all(torch.allclose(out[k], a[k], atol=1e-7) for k in a)


def test_weights_are_normalised_and_follow_the_formula():
    a, b, c = sd(0), sd(1), sd(2)
    out = merge_state_dicts([a, b, c], [5, 5, 1])
    k = "model.layers.0.mlp.up_proj.weight"
    assert torch.allclose(out[k], (5 * a[k] + 5 * b[k] + 1 * c[k]) / 11, atol=1e-6)
    scaled = merge_state_dicts([a, b, c], [50, 50, 10])  # only the ratio matters
    assert all(torch.allclose(out[k], scaled[k]) for k in out)
    only_first = merge_state_dicts([a, b], [1, 0])
    assert torch.equal(only_first[k], a[k])


def test_mismatched_architectures_are_refused():
    with pytest.raises(ValueError, match="cannot merge: .* is \\(") as e:
        merge_state_dicts([sd(0, hidden=16), sd(1, hidden=32)])
    assert "\n" not in str(e.value)
    b = dict(sd(1))
    b.pop("lm_head.weight")
    with pytest.raises(ValueError, match="lacks 'lm_head.weight'"):
        merge_state_dicts([sd(0), b])
    with pytest.raises(ValueError, match="weights"):
        merge_state_dicts([sd(0), sd(1)], [1, 2, 3])
    with pytest.raises(ValueError, match="non-negative"):
        merge_state_dicts([sd(0), sd(1)], [1, -1])


def test_merge_checkpoint_folders(tmp_path):
    for i in range(3):
        (tmp_path / f"c{i}").mkdir()
        save_file(sd(i), str(tmp_path / f"c{i}" / "model.safetensors"))
    out = merge_checkpoints([tmp_path / f"c{i}" for i in range(3)])
    ref = merge_state_dicts([sd(0), sd(1), sd(2)], PAPER_WEIGHTS)
    assert all(torch.allclose(out[k], ref[k]) for k in ref)
    with pytest.raises(FileNotFoundError):
        merge_checkpoints([tmp_path / "nope"], [1])

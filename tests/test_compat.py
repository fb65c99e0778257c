"""aqaa_ref.compat: the KV cache under the name the installed transformers uses.

transformers 5.24 renamed ``past_key_values`` to ``cache`` in ``generate`` and in every
model output; before the fix the backbone read no cache during ``generate`` (past length 0).
"""
import inspect
import subprocess
import sys

import pytest
import torch
import transformers
from transformers import DynamicCache, GenerationMixin
from transformers.modeling_outputs import BaseModelOutputWithPast, CausalLMOutputWithPast

from aqaa_ref.backbone.model import Step1Config, Step1ForCausalLM
from aqaa_ref.compat import cache_field, output_cache, pick_cache, prepared_model, unload_library, with_cache


def tiny_model(seed=0):
    torch.manual_seed(seed)
    cfg = Step1Config(vocab_size=50, hidden_size=16, intermediate_size=32, num_attention_heads=2,
                      num_attention_groups=1, num_hidden_layers=1, max_seq_len=64,
                      attention_kernel="eager")
    return Step1ForCausalLM(cfg).eval()


def test_cache_field_is_the_name_generate_passes():
    """The name ``prepare_inputs_for_generation`` passes the cache under is the field we write."""
    params = inspect.signature(GenerationMixin.prepare_inputs_for_generation).parameters
    passed = "cache" if "cache" in params else "past_key_values"
    assert cache_field() == passed, transformers.__version__
    assert cache_field(BaseModelOutputWithPast) == passed


def test_with_cache_and_output_cache_round_trip():
    c = DynamicCache()
    out = with_cache(CausalLMOutputWithPast, c, logits=torch.zeros(1, 1, 3))
    assert output_cache(out) is c
    assert out[cache_field()] is c


def test_pick_cache_takes_either_name_but_not_two_caches():
    a, b = DynamicCache(), DynamicCache()
    assert pick_cache(a, None) is a and pick_cache(None, b) is b and pick_cache(a, a) is a
    assert pick_cache(None, None) is None
    with pytest.raises(ValueError, match="not both"):
        pick_cache(a, b)


@pytest.mark.parametrize("name", ["cache", "past_key_values"])
def test_forward_fills_the_cache_under_either_name(name):
    m = tiny_model()
    ids = torch.randint(0, 50, (2, 7), generator=torch.Generator().manual_seed(0))
    full = m(ids, use_cache=False).logits
    cache = DynamicCache(config=m.config)
    first = m(ids[:, :5], use_cache=True, **{name: cache})
    assert output_cache(first) is cache and cache.get_seq_length() == 5
    rest = m(ids[:, 5:], attention_mask=torch.ones(2, 7, dtype=torch.long), use_cache=True, **{name: cache})
    assert cache.get_seq_length() == 7
    assert torch.allclose(torch.cat([first.logits, rest.logits], 1), full, atol=1e-5)


def test_generate_reuses_its_cache_with_a_padded_batch():
    """The failure on transformers 5.24: a left-padded batch's mask grows past a cache of 0."""
    m = tiny_model(seed=1)
    ids = torch.tensor([[0, 0, 5, 6, 7], [8, 9, 10, 11, 12]])
    mask = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    kw = dict(attention_mask=mask, max_new_tokens=6, do_sample=False, eos_token_id=None, pad_token_id=0)
    cached = m.generate(ids, use_cache=True, **kw)
    plain = m.generate(ids, use_cache=False, **kw)
    assert cached.shape == (2, 11)
    assert torch.equal(cached, plain)


# --------------------------------------------------------------------------- private pieces
def test_accelerate_still_has_the_private_state_force_fsdp_state_writes():
    from accelerate import Accelerator
    from accelerate.state import PartialState

    assert isinstance(PartialState._shared_state, dict)
    acc = Accelerator(cpu=True)
    model = torch.nn.Linear(2, 2)
    assert prepared_model(acc, model) is model          # nothing prepared yet: the fallback
    wrapped = acc.prepare(model)
    assert prepared_model(acc, None) is wrapped


def test_fake_store_backs_a_fake_process_group_in_a_subprocess():
    code = ("import torch.distributed as dist\n"
            "from aqaa_ref.compat import fake_store\n"
            "dist.init_process_group('fake', store=fake_store(), rank=3, world_size=8)\n"
            "print(dist.get_rank(), dist.get_world_size())\n"
            "dist.destroy_process_group()\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["3", "8"]


def test_unload_library_lets_espeak_reload_from_clean_state():
    import ctypes

    import espeakng_loader

    lib = ctypes.CDLL(espeakng_loader.get_library_path())
    unload_library(lib._handle)
    again = ctypes.CDLL(espeakng_loader.get_library_path())     # loads again after the unload
    assert again._handle
    unload_library(again._handle)


def test_mem_tracker_counts_a_training_step():
    from aqaa_ref.compat import mem_tracker

    model = torch.nn.Linear(64, 64)
    opt = torch.optim.AdamW(model.parameters())
    mt = mem_tracker()
    mt.track_external(model, opt)
    with mt:
        model(torch.randn(8, 64)).sum().backward()
        opt.step()
    peak = mt.get_tracker_snapshot("peak")[torch.device("cpu")]
    assert peak["Total"] >= 64 * 65 * 4 * 3          # weights, gradients and two AdamW moments (fp32)

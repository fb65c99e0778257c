"""Step-1 backbone: attention math, KV cache, Auto classes, checkpoints, counts, vocab extension."""
import json
import math
import re

import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM, DynamicCache

from aqaa_ref.backbone.attention import alibi_bias, alibi_slopes, eager_attention, flex_attention_alibi, sdpa_attention
from aqaa_ref.backbone.model import (STEP1_PRESETS, Step1Config, Step1ForCausalLM, Step1RMSNorm, count_parameters,
                                     estimate_mfu, flops_per_token, kv_cache_bytes_per_token, write_released_layout)
from aqaa_ref.backbone.vocab_extension import extend_vocab_for_audio, param_groups
from aqaa_ref.formats.id_layout import AudioVocab


# tiny tensors: one intra-op thread (on a busy 2-core box, OpenMP barriers wait on the
# scheduler and make each tiny op take milliseconds); the fixture is in conftest.py
pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_config(**kw) -> Step1Config:
    base = dict(vocab_size=100, hidden_size=32, intermediate_size=64, num_attention_heads=4,
                num_attention_groups=2, num_hidden_layers=2, max_seq_len=128, attention_kernel="eager")
    return Step1Config(**{**base, **kw})


def tiny_model(seed=0, **kw) -> Step1ForCausalLM:
    torch.manual_seed(seed)
    return Step1ForCausalLM(tiny_config(**kw)).eval()


# --------------------------------------------------------------------------- ALiBi
def test_alibi_slopes_power_of_two():
    assert alibi_slopes(8).tolist() == [2.0 ** -k for k in range(1, 9)]


def test_alibi_slopes_non_power_of_two_hand_values():
    # 6 heads: n = 4 -> 2^-2, 2^-4, 2^-6, 2^-8; extra: (2^-1)^1, (2^-1)^3
    assert alibi_slopes(6).tolist() == [0.25, 0.0625, 0.015625, 0.00390625, 0.5, 0.125]
    # 12 heads: n = 8 -> 2^-1..2^-8; extra: (2^-0.5)^1, ^3, ^5, ^7
    want = [2.0 ** -k for k in range(1, 9)] + [2.0 ** -0.5, 2.0 ** -1.5, 2.0 ** -2.5, 2.0 ** -3.5]
    assert torch.allclose(alibi_slopes(12), torch.tensor(want))
    with pytest.raises(ValueError, match="n_heads"):
        alibi_slopes(0)


def test_sqrt_alibi_bias_hand_values():
    b = alibi_bias(torch.tensor([0.5]), 3, 3)[0, 0]
    neg = torch.finfo(torch.float32).min
    want = torch.tensor([[0.0, neg, neg], [-0.5, 0.0, neg], [-0.5 * math.sqrt(2), -0.5, 0.0]])
    assert torch.equal(b, want)
    plain = alibi_bias(torch.tensor([0.5]), 3, 3, sqrt=False)[0, 0]
    assert plain[2, 0].item() == -1.0
    # with a cache: 2 queries at positions 3, 4 of 5 keys
    c = alibi_bias(torch.tensor([1.0]), 2, 5)[0, 0]
    assert torch.allclose(c[1], -torch.tensor([4.0, 3.0, 2.0, 1.0, 0.0]).sqrt())
    assert c[0, 4].item() == neg


def reference_attention(q, k, v, slopes, key_padding=None):
    """Loop-level attention: each (b, h, i) softmaxes over allowed keys j with the
    score q.k/sqrt(hd) - slope_h * sqrt(i - j). q (B,H,T,hd), k/v (B,G,S,hd)."""
    B, H, T, hd = q.shape
    G, S = k.shape[1], k.shape[2]
    out = torch.zeros_like(q, dtype=torch.float64)
    for b in range(B):
        for h in range(H):
            g = h // (H // G)
            for t in range(T):
                i = S - T + t
                js = [j for j in range(i + 1) if key_padding is None or key_padding[b, j]]
                if not js:
                    continue
                s = torch.stack([q[b, h, t].double() @ k[b, g, j].double() / math.sqrt(hd)
                                 - slopes[h].double() * math.sqrt(i - j) for j in js])
                p = torch.softmax(s, 0)
                out[b, h, t] = sum(p[n] * v[b, g, j].double() for n, j in enumerate(js))
    return out.float()


@pytest.mark.parametrize("kernel", ["eager", "sdpa", "flex"])
@pytest.mark.parametrize("T,S", [(6, 6), (2, 7)])
def test_attention_kernels_equal_reference(kernel, T, S):
    torch.manual_seed(0)
    B, H, G, hd = 2, 6, 2, 8
    q, k, v = torch.randn(B, H, T, hd), torch.randn(B, G, S, hd), torch.randn(B, G, S, hd)
    pad = torch.ones(B, S, dtype=torch.bool)
    pad[1, :2] = False                                     # row 1 is left-padded by 2
    slopes = alibi_slopes(H)
    ref = reference_attention(q, k, v, slopes, pad)
    if kernel == "flex":
        out = flex_attention_alibi(q, k, v, slopes, pad)
    else:
        bias = alibi_bias(slopes, T, S, key_padding=pad)
        out = (eager_attention if kernel == "eager" else sdpa_attention)(q, k, v, bias)
    assert out.shape == (B, H, T, hd)
    real_q = pad[:, S - T:]                                # padded queries: output is don't-care
    assert torch.allclose(out.transpose(1, 2)[real_q], ref.transpose(1, 2)[real_q], atol=1e-5)


# --------------------------------------------------------------------------- the model
def test_parameter_names_are_the_released_ones():
    names = {n for n, _ in tiny_model().named_parameters()}
    want = {"model.embed_tokens.weight", "model.norm.weight", "lm_head.weight"}
    for i in range(2):
        want |= {f"model.layers.{i}.self_attn.{p}_proj.weight" for p in "qkvo"}
        want |= {f"model.layers.{i}.mlp.{p}_proj.weight" for p in ("gate", "up", "down")}
        want |= {f"model.layers.{i}.input_layernorm.weight", f"model.layers.{i}.post_attention_layernorm.weight"}
    assert names == want                                   # and no biases


def test_golden_logits_fixed_seed():
    m = tiny_model(seed=0)
    logits = m(torch.tensor([[1, 5, 9, 42, 7]])).logits
    assert logits.shape == (1, 5, 100)
    got = logits[0, -1, :4]
    want = torch.tensor([-0.21232, -0.20501, -0.14210, 0.08362])
    assert torch.allclose(got, want, atol=1e-4), got


def test_kernels_agree_in_the_full_model():
    ids = torch.randint(0, 100, (2, 12), generator=torch.Generator().manual_seed(1))
    mask = torch.ones(2, 12, dtype=torch.long)
    mask[0, :3] = 0
    outs = {}
    for kernel in ("eager", "sdpa", "flex"):
        m = tiny_model(seed=0, attention_kernel=kernel)
        with torch.no_grad():                              # flex has no CPU backward in torch 2.11
            outs[kernel] = m(ids, attention_mask=mask).logits
    real = mask.bool()
    for kernel in ("sdpa", "flex"):
        assert torch.allclose(outs[kernel][real], outs["eager"][real], atol=1e-5)


def test_kv_cache_equals_full_recompute():
    m = tiny_model(seed=3)
    ids = torch.randint(0, 100, (2, 10), generator=torch.Generator().manual_seed(2))
    full = m(ids, use_cache=False).logits                 # (2, 10, V)
    cache = DynamicCache(config=m.config)
    steps = [m(ids[:, :4], cache=cache, use_cache=True).logits]
    for t in range(4, 10):
        steps.append(m(ids[:, t:t + 1], cache=cache, use_cache=True).logits)
    assert cache.get_seq_length() == 10
    assert torch.allclose(torch.cat(steps, 1), full, atol=1e-5)


def test_generate_with_cache_equals_without_and_left_padding_is_harmless():
    m = tiny_model(seed=4)
    prompt = torch.tensor([[11, 12, 13, 14, 15, 16]])
    kw = dict(max_new_tokens=12, do_sample=False, eos_token_id=None, pad_token_id=0)
    with_cache = m.generate(prompt, use_cache=True, **kw)
    without = m.generate(prompt, use_cache=False, **kw)
    assert torch.equal(with_cache, without)
    # the same prompt left-padded inside a batch generates the same continuation
    batch = torch.tensor([[0, 0, 11, 12, 13, 14, 15, 16], [21, 22, 23, 24, 25, 26, 27, 28]])
    mask = torch.tensor([[0, 0, 1, 1, 1, 1, 1, 1], [1] * 8])
    out = m.generate(batch, attention_mask=mask, **kw)
    assert torch.equal(out[0, 8:], with_cache[0, 6:])


def test_save_load_round_trip_through_auto_classes(tmp_path):
    m = tiny_model(seed=5)
    m.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["model_type"] == "step1"
    for field in ("hidden_size", "intermediate_size", "num_attention_heads", "num_attention_groups",
                  "num_hidden_layers", "max_seq_len", "vocab_size", "rms_norm_eps"):
        assert saved[field] == getattr(m.config, field)
    cfg = AutoConfig.from_pretrained(tmp_path)
    assert type(cfg) is Step1Config
    m2 = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    assert type(m2) is Step1ForCausalLM
    ids = torch.tensor([[3, 1, 4, 1, 5, 9, 2, 6]])
    assert torch.equal(m(ids).logits, m2(ids).logits)


def test_sharded_checkpoint_in_released_layout_loads(tmp_path):
    m = tiny_model(seed=6)
    write_released_layout(m, tmp_path, n_shards=3)
    index = json.loads((tmp_path / "model.safetensors.index.json").read_text())
    shards = sorted(set(index["weight_map"].values()))
    assert shards == [f"model-0000{k}-of-00003.safetensors" for k in (1, 2, 3)]
    pattern = re.compile(r"^(lm_head|model\.(embed_tokens|norm|layers\.\d+\.(self_attn\.[qkvo]_proj|"
                         r"mlp\.(gate|up|down)_proj|input_layernorm|post_attention_layernorm)))\.weight$")
    assert all(pattern.match(k) for k in index["weight_map"])
    m2, info = AutoModelForCausalLM.from_pretrained(tmp_path, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    for (n, p), (n2, p2) in zip(m.state_dict().items(), m2.state_dict().items()):
        assert n == n2 and torch.equal(p, p2)


def test_loss_masks_minus_100_and_shifts():
    m = tiny_model(seed=7)
    ids = torch.tensor([[1, 4, 8, 15, 16, 23, 42]])
    labels = ids.clone()
    labels[0, :4] = -100
    out = m(ids, labels=labels)
    logp = torch.log_softmax(out.logits[0], -1)
    manual = -torch.stack([logp[t - 1, ids[0, t]] for t in range(4, 7)]).mean()
    assert torch.allclose(out.loss, manual, atol=1e-6)


def test_rmsnorm_variance_in_float32():
    norm = Step1RMSNorm(4, eps=1e-5)
    x = torch.tensor([[300.0, -200.0, 100.0, 400.0]], dtype=torch.bfloat16)
    y = norm(x)
    assert y.dtype == torch.bfloat16
    x32 = x.float()
    want = x32 / torch.sqrt((x32 ** 2).mean(-1, keepdim=True) + 1e-5)
    assert torch.allclose(y.float(), want, atol=1e-2)
    assert torch.isfinite(y).all()                        # 400^2 summed in bf16 would lose digits


def test_bad_input_gives_clear_errors():
    with pytest.raises(ValueError, match="not divisible by num_attention_heads"):
        tiny_config(hidden_size=30)
    with pytest.raises(ValueError, match="num_attention_groups"):
        tiny_config(num_attention_groups=3)
    with pytest.raises(ValueError, match="unknown preset"):
        Step1Config.from_preset("gpt5")
    with pytest.raises(ValueError, match="needs vocab_size"):
        Step1Config.from_preset("toy")
    m = tiny_model()
    with pytest.raises(ValueError, match="attention_mask must be"):
        m(torch.tensor([[1, 2, 3]]), attention_mask=torch.ones(1, 2))
    with pytest.raises(ValueError, match="exceeds max_seq_len"):
        m(torch.zeros(1, 129, dtype=torch.long))


# --------------------------------------------------------------------------- counts
@pytest.mark.parametrize("name", ["toy", "100m"])
def test_analytic_count_equals_numel(name):
    cfg = Step1Config.from_preset(name, vocab_size=AudioVocab(1024, 1024, 4096).size)
    with torch.device("meta"):
        m = Step1ForCausalLM(cfg)
    assert count_parameters(cfg)["total"] == sum(p.numel() for p in m.parameters())


def test_tiny_count_on_real_weights():
    m = tiny_model()
    assert count_parameters(m.config)["total"] == sum(p.numel() for p in m.parameters()) == 24_992


def test_step_audio_130b_on_meta_device():
    cfg = Step1Config.from_preset("step-audio-130b")
    assert (cfg.vocab_size, cfg.head_dim) == (74_752, 128)
    with torch.device("meta"):
        m = Step1ForCausalLM(cfg)
    n = sum(p.numel() for p in m.parameters())
    assert n == count_parameters(cfg)["total"]
    assert abs(n - 131.95e9) / 131.95e9 < 1e-3
    assert abs(count_parameters(cfg)["per_layer"] - 1.478e9) / 1.478e9 < 1e-3
    assert round(n * 2 / 1e9) == 264                      # GB in bf16 (facts §3)
    assert kv_cache_bytes_per_token(cfg) == 2 * 88 * 8 * 128 * 2


def test_flops_and_mfu():
    cfg = Step1Config.from_preset("1b")
    n = count_parameters(cfg)
    want = 6 * (n["total"] - n["embed_tokens"]) + 6 * 16 * 2048 * 4096
    assert flops_per_token(cfg, 4096) == want
    # 1e5 tokens/s on a 989 TFLOP/s GPU
    assert estimate_mfu(cfg, 1e5, 4096, 989e12) == pytest.approx(1e5 * want / 989e12)


def test_published_tts_3b_shape():
    cfg = Step1Config.from_preset("tts-3b")
    assert (cfg.num_hidden_layers, cfg.hidden_size, cfg.num_attention_heads, cfg.head_dim,
            cfg.num_attention_groups, cfg.intermediate_size) == (32, 3072, 48, 64, 4, 8192)
    assert set(STEP1_PRESETS) == {"toy", "100m", "1b", "tts-3b", "step-audio-130b"}


# --------------------------------------------------------------------------- vocab extension
def test_extend_vocab_keeps_text_rows_and_mean_inits_audio_rows():
    vocab = AudioVocab(text_vocab_size=100, n_linguistic=8, n_semantic=16)
    m = tiny_model(seed=8)
    old_emb = m.model.embed_tokens.weight.detach().clone()
    old_head = m.lm_head.weight.detach().clone()
    ids = torch.tensor([[1, 2, 3, 4]])
    p_old = torch.softmax(m(ids).logits[0, -1], -1)
    extend_vocab_for_audio(m, vocab)
    assert m.config.vocab_size == 124 == m.model.embed_tokens.weight.shape[0] == m.lm_head.weight.shape[0]
    assert torch.equal(m.model.embed_tokens.weight[:100], old_emb)
    assert torch.equal(m.lm_head.weight[:100], old_head)
    new = m.lm_head.weight[100:]
    assert torch.allclose(new.mean(0), old_head.mean(0), atol=0.01)
    assert new.std(0).mean() < 0.2 * old_head.std(0).mean()        # small noise, distinct rows
    assert (new[0] != new[1]).any()
    # an untrained model's logits are nearly flat: the new tokens take about their share of the
    # mass (no more), and the text tokens keep their order
    p_new = torch.softmax(m(ids).logits[0, -1], -1)
    assert p_new[100:].sum() < 1.2 * 24 / 124
    assert torch.argmax(p_new) == torch.argmax(p_old)
    assert m(torch.tensor([[1, 100, 123]])).logits.shape == (1, 3, 124)
    with pytest.raises(ValueError, match="already larger"):
        extend_vocab_for_audio(m, AudioVocab(text_vocab_size=50, n_linguistic=4, n_semantic=4))


@pytest.mark.parametrize("sharpen", [1.0, 30.0])
def test_extend_vocab_new_ids_take_the_jensen_share_and_keep_text_ratios(sharpen):
    """Each new id starts at exp(-g) times the average text probability, g = log mean exp(l) - mean(l)
    the Jensen gap of the text logits l: about its share of the vocabulary for flat logits (an
    untrained model), far less for a confident model. The text ids' relative probabilities stay."""
    vocab = AudioVocab(text_vocab_size=100, n_linguistic=8, n_semantic=16)
    m = tiny_model(seed=8)
    ids = torch.tensor([[1, 2, 3, 4]])
    with torch.no_grad():
        m.lm_head.weight.mul_(sharpen)               # sharpen 30: spread-out logits, a confident model
        logits = m(ids).logits[0, -1]
        p_old = torch.softmax(logits, -1)
        extend_vocab_for_audio(m, vocab, noise_scale=0.0)
        p_new = torch.softmax(m(ids).logits[0, -1], -1)
    g = (torch.logsumexp(logits, 0) - math.log(100) - logits.mean()).item()
    mass = p_new[100:].sum().item()
    assert mass == pytest.approx(24 * math.exp(-g) / (100 + 24 * math.exp(-g)), rel=1e-3)
    torch.testing.assert_close(p_new[:100] / p_new[:100].sum(), p_old)
    if sharpen == 1.0:
        assert g < 0.05 and mass == pytest.approx(24 / 124, rel=0.05)
    else:
        assert g > 3 and mass < 0.1 * 24 / 124             # under a tenth of their share


def test_param_groups_give_embedding_and_head_5x_lr():
    m = tiny_model(seed=9)
    groups = param_groups(m, lr=1e-4, weight_decay=0.0)
    by_name = {g["name"]: g for g in groups}
    assert by_name["embed"]["lr"] == pytest.approx(5e-4)
    assert by_name["decay"]["lr"] == by_name["no_decay"]["lr"] == 1e-4
    ids_in_groups = [id(p) for g in groups for p in g["params"]]
    assert sorted(ids_in_groups) == sorted(id(p) for p in m.parameters())   # each exactly once
    # the first AdamW step moves every parameter by about its group's lr
    before = {n: p.detach().clone() for n, p in m.named_parameters()}
    opt = torch.optim.AdamW(groups)
    m.train()
    m(torch.tensor([[1, 2, 3, 4, 5]]), labels=torch.tensor([[1, 2, 3, 4, 5]])).loss.backward()
    opt.step()
    step = {n: (p.detach() - before[n]).abs().max().item() for n, p in m.named_parameters()}
    assert step["lm_head.weight"] == pytest.approx(5e-4, rel=0.05)
    assert step["model.embed_tokens.weight"] == pytest.approx(5e-4, rel=0.05)
    assert step["model.layers.0.mlp.up_proj.weight"] == pytest.approx(1e-4, rel=0.05)

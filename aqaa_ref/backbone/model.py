"""The Step-1 decoder: the LLM backbone of Step-Audio / Step-Audio-AQAA (facts §3).

A pre-norm decoder-only transformer, as released (Step-Audio-Chat config.json)::

    x = embed_tokens(ids)                                   # (B, T, d)
    for each layer:
        x = x + o_proj(Attn(input_layernorm(x)))            # GQA + square-root ALiBi
        x = x + down(silu(gate(h)) * up(h)),  h = post_attention_layernorm(x)
    logits = lm_head(norm(x))                               # (B, T, V), untied from embed

No biases anywhere, RMSNorm variance in float32, no rotary embedding: position enters
only through the ALiBi bias (see ``aqaa_ref.backbone.attention``). Parameter names match the
released checkpoints, so their safetensors shards load directly.

Wired into transformers: ``Step1Config`` / ``Step1ForCausalLM`` are registered with
``AutoConfig`` / ``AutoModelForCausalLM`` under ``model_type="step1"`` on import, so
``save_pretrained``, ``from_pretrained`` and ``generate`` (KV cache = ``DynamicCache``)
work without remote code. The KV cache is passed as ``cache=`` (transformers >= 5.24) or
``past_key_values=`` (5.0-5.23); ``aqaa_ref.compat`` holds that one difference.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from transformers import (AutoConfig, AutoModel, AutoModelForCausalLM, DynamicCache, GenerationMixin, PreTrainedConfig,
                          PreTrainedModel)
from transformers.modeling_outputs import BaseModelOutputWithPast, CausalLMOutputWithPast

from aqaa_ref.backbone.attention import alibi_bias, alibi_slopes, eager_attention, flex_attention_alibi, sdpa_attention
from aqaa_ref.compat import output_cache, pick_cache, with_cache
from aqaa_ref import presets

# name -> config kwargs (the backbone rows of the one preset table, aqaa_ref/presets.py)
STEP1_PRESETS: dict[str, dict] = presets.PRESETS["backbone"]


class Step1Config(PreTrainedConfig):
    """Step-1 hyper-parameters, with the field names of the released config.json.

    A dataclass (transformers 5 configs are). ``attention_kernel`` picks the attention code:
    "auto" (flex_attention on CUDA, SDPA with the bias on CPU), "eager", "sdpa" or "flex".
    On CPU, SDPA's fwd+bwd is ~4x faster than eager in fp32 and on par in bf16 (toy shapes,
    one thread); flex runs unfused and forward only on CPU (torch 2.11 has no flex backward
    on CPU), which is enough to test it against the others.
    """
    model_type = "step1"

    vocab_size: int = 74_752
    hidden_size: int = 256
    intermediate_size: int = 704
    num_attention_heads: int = 8
    num_attention_groups: int = 2           # GQA: number of key/value heads
    num_hidden_layers: int = 4
    max_seq_len: int = 2048
    rms_norm_eps: float = 1e-5
    initializer_range: float = 0.02
    attention_kernel: str = "auto"
    sqrt_alibi: bool = True                  # False = plain ALiBi (for ablations only)
    use_cache: bool = True
    tie_word_embeddings: bool = False
    pad_token_id: int | None = 0
    bos_token_id: int | None = 1
    eos_token_id: int | list[int] | None = 3

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(f"hidden_size {self.hidden_size} is not divisible by "
                             f"num_attention_heads {self.num_attention_heads}")
        if self.num_attention_heads % self.num_attention_groups:
            raise ValueError(f"num_attention_heads {self.num_attention_heads} is not divisible "
                             f"by num_attention_groups {self.num_attention_groups}")
        if self.attention_kernel not in ("auto", "eager", "sdpa", "flex"):
            raise ValueError(f"attention_kernel must be auto/eager/sdpa/flex, "
                             f"got {self.attention_kernel!r}")

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @classmethod
    def from_preset(cls, name: str, **overrides) -> "Step1Config":
        """``Step1Config.from_preset("toy", vocab_size=AudioVocab(...).size)``."""
        if name not in STEP1_PRESETS:
            raise ValueError(f"unknown preset {name!r}; choose from {sorted(STEP1_PRESETS)}")
        kw = presets.preset("backbone", name)
        if name == "toy" and "vocab_size" not in overrides:
            raise ValueError("preset 'toy' needs vocab_size=... (e.g. AudioVocab(...).size)")
        return cls(**{**kw, **overrides})

    def hyperparameters(self) -> dict:
        """Step-1's own fields (not transformers' generic ones): what a cache key should hash."""
        return {name: getattr(self, name) for name in Step1Config.__annotations__}


def count_parameters(cfg: Step1Config) -> dict[str, int]:
    """Analytic parameter count (equals ``sum(p.numel())``), split by part.

    Per layer: q,o: d*d each; k,v: d*(G*hd) each; MLP 3*d*ff; 2 norms of d.
    """
    d, ff, kv = cfg.hidden_size, cfg.intermediate_size, cfg.num_attention_groups * cfg.head_dim
    per_layer = 2 * d * d + 2 * d * kv + 3 * d * ff + 2 * d
    out = {"embed_tokens": cfg.vocab_size * d, "layers": cfg.num_hidden_layers * per_layer,
           "norm": d, "lm_head": cfg.vocab_size * d, "per_layer": per_layer}
    out["total"] = out["embed_tokens"] + out["layers"] + out["norm"] + out["lm_head"]
    return out


def flops_per_token(cfg: Step1Config, seq_len: int) -> float:
    """Training FLOPs per token (fwd+bwd): 6 N (matmuls, embedding lookup excluded)
    + 6 L d T for attention scores and weighted sum with causal halving (PaLM appendix B)."""
    n = count_parameters(cfg)
    return 6 * (n["total"] - n["embed_tokens"]) + 6 * cfg.num_hidden_layers * cfg.hidden_size * seq_len


def estimate_mfu(cfg: Step1Config, tokens_per_s: float, seq_len: int, peak_flops: float) -> float:
    """Model FLOPs utilisation: achieved training FLOP/s over the accelerator's peak."""
    return tokens_per_s * flops_per_token(cfg, seq_len) / peak_flops


def kv_cache_bytes_per_token(cfg: Step1Config, bytes_per_value: int = 2) -> int:
    """Bytes of K and V cached per token over all layers: 2 * L * G * hd * bytes."""
    return 2 * cfg.num_hidden_layers * cfg.num_attention_groups * cfg.head_dim * bytes_per_value


class Step1RMSNorm(nn.Module):
    """y = w * x / sqrt(mean(x^2) + eps), the mean taken in float32. x: (..., d)."""

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x.float()
        x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return (self.weight.float() * x32).to(x.dtype)


class Step1Attention(nn.Module):
    def __init__(self, cfg: Step1Config, layer_idx: int):
        super().__init__()
        self.layer_idx = layer_idx
        self.n_head, self.n_group, self.hd = cfg.num_attention_heads, cfg.num_attention_groups, cfg.head_dim
        d = cfg.hidden_size
        self.q_proj = nn.Linear(d, self.n_head * self.hd, bias=False)
        self.k_proj = nn.Linear(d, self.n_group * self.hd, bias=False)
        self.v_proj = nn.Linear(d, self.n_group * self.hd, bias=False)
        self.o_proj = nn.Linear(self.n_head * self.hd, d, bias=False)

    def forward(self, x, attend, cache=None):
        """x (B, T, d) -> (B, T, d). ``attend(q, k, v)`` is the kernel with its bias/mask."""
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.n_head, self.hd).transpose(1, 2)   # (B, H, T, hd)
        k = self.k_proj(x).view(B, T, self.n_group, self.hd).transpose(1, 2)  # (B, G, T, hd)
        v = self.v_proj(x).view(B, T, self.n_group, self.hd).transpose(1, 2)  # (B, G, T, hd)
        if cache is not None:
            k, v = cache.update(k, v, self.layer_idx)                          # (B, G, S, hd)
        y = attend(q, k, v)                                                    # (B, H, T, hd)
        return self.o_proj(y.transpose(1, 2).reshape(B, T, self.n_head * self.hd))


class Step1MLP(nn.Module):
    """SwiGLU: down(silu(gate(x)) * up(x)); (B, T, d) -> (B, T, ff) -> (B, T, d)."""

    def __init__(self, cfg: Step1Config):
        super().__init__()
        self.gate_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=False)
        self.up_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=False)
        self.down_proj = nn.Linear(cfg.intermediate_size, cfg.hidden_size, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Step1DecoderLayer(nn.Module):
    def __init__(self, cfg: Step1Config, layer_idx: int):
        super().__init__()
        self.input_layernorm = Step1RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.self_attn = Step1Attention(cfg, layer_idx)
        self.post_attention_layernorm = Step1RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.mlp = Step1MLP(cfg)

    def forward(self, x, attend, cache=None):                              # (B, T, d)
        x = x + self.self_attn(self.input_layernorm(x), attend, cache)
        return x + self.mlp(self.post_attention_layernorm(x))


class Step1PreTrainedModel(PreTrainedModel):
    config_class = Step1Config
    base_model_prefix = "model"
    _no_split_modules = ["Step1DecoderLayer"]
    _skip_keys_device_placement = ["cache", "past_key_values"]

    def _init_weights(self, module):
        """Every Linear and Embedding ~ N(0, initializer_range); RMSNorm weights = 1.
        (transformers' default rule does exactly this, and skips weights loaded from a
        checkpoint, so we defer to it.)"""
        super()._init_weights(module)


class Step1Model(Step1PreTrainedModel):
    """Embedding + decoder layers + final norm; returns hidden states (B, T, d)."""

    def __init__(self, config: Step1Config):
        super().__init__(config)
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(Step1DecoderLayer(config, i) for i in range(config.num_hidden_layers))
        self.norm = Step1RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.post_init()

    def _make_attend(self, q_len: int, kv_len: int, key_padding, device, dtype):
        """Build the kernel once per forward; every layer shares the bias (or block mask)."""
        cfg = self.config
        kernel = cfg.attention_kernel
        if kernel == "auto":
            kernel = "flex" if device.type == "cuda" and cfg.sqrt_alibi else "sdpa"
        slopes = alibi_slopes(cfg.num_attention_heads).to(device)               # (H,)
        if kernel == "flex":
            if not cfg.sqrt_alibi:
                raise ValueError("attention_kernel='flex' implements only the sqrt ALiBi bias")
            return lambda q, k, v: flex_attention_alibi(q, k, v, slopes, key_padding)
        bias = alibi_bias(slopes, q_len, kv_len, cfg.sqrt_alibi, key_padding, dtype)  # (1|B,H,T,S)
        fn = sdpa_attention if kernel == "sdpa" else eager_attention
        return lambda q, k, v: fn(q, k, v, bias)

    def forward(self, input_ids=None, attention_mask=None, cache=None, inputs_embeds=None,
                use_cache=None, past_key_values=None, **kwargs) -> BaseModelOutputWithPast:
        """input_ids (B, T) (or inputs_embeds (B, T, d)); attention_mask (B, past + T) with 1 =
        real token (left padding is fine: ALiBi depends only on i - j); ``cache`` a
        ``transformers.Cache`` holding ``past`` tokens (``past_key_values`` is its older name)."""
        cache = pick_cache(cache, past_key_values)
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids or inputs_embeds")
        x = self.embed_tokens(input_ids) if inputs_embeds is None else inputs_embeds   # (B, T, d)
        B, T, _ = x.shape
        use_cache = use_cache if use_cache is not None else (self.config.use_cache and not self.training)
        if use_cache and cache is None:
            cache = DynamicCache(config=self.config)
        past = cache.get_seq_length() if cache is not None else 0
        if past + T > self.config.max_seq_len:
            raise ValueError(f"sequence length {past + T} exceeds max_seq_len {self.config.max_seq_len}")
        key_padding = None
        if attention_mask is not None:
            if attention_mask.shape != (B, past + T):
                raise ValueError(f"attention_mask must be (B, past + T) = {(B, past + T)}, "
                                 f"got {tuple(attention_mask.shape)}")
            if not bool(attention_mask.all()):
                key_padding = attention_mask.bool()                              # (B, S)
        attend = self._make_attend(T, past + T, key_padding, x.device, x.dtype)
        for layer in self.layers:
            x = layer(x, attend, cache)
        return with_cache(BaseModelOutputWithPast, cache, last_hidden_state=self.norm(x))


class Step1ForCausalLM(Step1PreTrainedModel, GenerationMixin):
    """Step1Model + untied lm_head. ``labels`` (B, T) are shifted inside (HF convention);
    -100 marks positions without loss."""

    def __init__(self, config: Step1Config):
        super().__init__(config)
        self.model = Step1Model(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()

    def get_input_embeddings(self):
        return self.model.embed_tokens

    def get_output_embeddings(self):
        return self.lm_head

    def forward(self, input_ids=None, attention_mask=None, cache=None, inputs_embeds=None,
                labels=None, use_cache=None, logits_to_keep: int = 0, past_key_values=None,
                **kwargs) -> CausalLMOutputWithPast:
        out = self.model(input_ids=input_ids, attention_mask=attention_mask,
                         cache=pick_cache(cache, past_key_values), inputs_embeds=inputs_embeds,
                         use_cache=use_cache)
        h = out.last_hidden_state                                          # (B, T, d)
        if logits_to_keep:                                                 # generate asks for the last one
            h = h[:, -logits_to_keep:]
        logits = self.lm_head(h)                                           # (B, T', V)
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), labels[:, 1:].flatten(),
                                   ignore_index=-100)
        return with_cache(CausalLMOutputWithPast, output_cache(out), loss=loss, logits=logits)


def write_released_layout(model: Step1ForCausalLM, out_dir: str | Path, n_shards: int = 2) -> Path:
    """Write ``model`` as the released checkpoints are laid out: config.json, shards
    ``model-0000k-of-0000n.safetensors`` and ``model.safetensors.index.json`` (weight_map:
    parameter name -> shard). Written with safetensors directly, not ``save_pretrained``, to
    show that the released names load by ``from_pretrained`` as they are."""
    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    names = list(state)
    per = math.ceil(len(names) / n_shards)
    weight_map, total = {}, 0
    for s in range(n_shards):
        shard = f"model-{s + 1:05d}-of-{n_shards:05d}.safetensors"
        part = {k: state[k] for k in names[s * per:(s + 1) * per]}
        save_file(part, str(out / shard), metadata={"format": "pt"})
        weight_map.update({k: shard for k in part})
        total += sum(t.numel() * t.element_size() for t in part.values())
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (out / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))
    cfg = model.config
    released = {k: getattr(cfg, k) for k in ("hidden_size", "intermediate_size", "num_attention_heads",
                                             "num_attention_groups", "num_hidden_layers", "max_seq_len",
                                             "vocab_size", "rms_norm_eps", "pad_token_id",
                                             "bos_token_id", "eos_token_id")}
    released.update(model_type="step1", architectures=["Step1ForCausalLM"], torch_dtype="float32")
    (out / "config.json").write_text(json.dumps(released, indent=2))
    return out


AutoConfig.register("step1", Step1Config, exist_ok=True)
AutoModel.register(Step1Config, Step1Model, exist_ok=True)
AutoModelForCausalLM.register(Step1Config, Step1ForCausalLM, exist_ok=True)

"""Planning a run from the toy preset to the 130B backbone: memory per GPU, GPU count, time.

Everything here is arithmetic on a ``Step1Config`` (no GPU, no memory): how many bytes each
GPU holds during training, the fewest GPUs that fit, how long a step takes at a given MFU,
and for inference the tensor-parallel size that holds the weights plus a KV cache.
``benchmarks/bench_scale.py`` checks the training estimate against measured peaks on small
presets, and :func:`fsdp_dry_run` shards the real 130B module on the meta device.

Notation: P parameters (``count_parameters``), L layers, d hidden, f FFN width, V vocab,
H heads, kv = G * head_dim (GQA key/value width), T sequence length, b micro-batch,
N GPUs in the data-parallel (sharding) group.

Training memory per GPU, the sum of five terms::

    static       = P * (weight + grad + master + optim) / N_shard      (16 bytes/param sharded for
                                                                        bf16 + fp32 master + fp32 Adam)
    activations  = b*T * (L * a_layer + head)                   no checkpointing (end of forward)
                 = b*T * (L * act*d + max(head, a_layer))       checkpointing: the layer inputs, plus the
                                                                head at the end of forward or one layer
                                                                recomputed in backward (not both at once)
    head         = (act + 8) * V + (8 + act) * d                logits, their fp32 copy, the log-softmax
                                                                saved; final RMSNorm and lm_head input
    buffers      = FSDP/ZeRO-3: the largest unit unsharded, ``prefetch`` of them in the weight
                   dtype (all-gather) + one in the grad dtype (before reduce-scatter)
    peak         = static + max(activations + buffers, optimizer-step temporaries)

with the per-token, per-layer activation bytes of this backbone (Korthikanti et al. 2022,
"Reducing Activation Recomputation in Large Transformer Models", §4, redone for Step-1:
RMSNorm in float32, SwiGLU, GQA, no dropout)::

    a_layer = 2 * 8d                        two RMSNorms, each saves x and x/rms(x) in float32
            + act * (2d                     normed inputs of q/k/v and of gate/up
                     + d + 2kv + d          q, k, v and the attention output (fused kernel)
                     + d                    o_proj input (the (B,T,H*hd) copy)
                     + 4f)                  gate, silu(gate), up, silu(gate)*up
            [+ eager kernel: act*2d for the GQA-repeated k, v; 4*H*S (softmax, fp32)
               + act*H*S (its copy in the compute dtype, when act != 4) instead of nothing]

``act`` is the activation dtype's bytes (2 for bf16, 4 for fp32). Fused attention (flash /
flex / SDPA's fused kernels) keeps no (T, S) score matrix; the eager kernel does.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from aqaa_ref.backbone.model import Step1Config, count_parameters, flops_per_token, kv_cache_bytes_per_token

GB = 1e9
H100_BF16_PEAK = 989e12          # dense bf16 FLOP/s of an H100 SXM (and of an H800)


@dataclass(frozen=True)
class Precision:
    """Bytes per parameter of each training state, and per activation element."""

    weight: int = 2        # the copy the model computes with (what FSDP / ZeRO-3 all-gathers)
    grad: int = 2          # gradients (what is reduce-scattered)
    master: int = 4        # fp32 master copy of the weights; 0 when ``weight`` is already fp32
    optim: int = 8         # AdamW exp_avg + exp_avg_sq, fp32
    activation: int = 2    # activations saved for backward

    @property
    def bytes_per_param(self) -> int:
        return self.weight + self.grad + self.master + self.optim


PRECISIONS = {
    # the usual mixed-precision count (ZeRO paper): 2 + 2 + 12 = 16 bytes per parameter.
    # FSDP2's MixedPrecisionPolicy keeps fp32 sharded params + fp32 grads instead: 4 + 4 + 8 = 16.
    "bf16-mixed": Precision(weight=2, grad=2, master=4, optim=8, activation=2),
    # plain fp32 training (the CPU measurements): 4 + 4 + 8 = 16 bytes, fp32 activations
    "fp32": Precision(weight=4, grad=4, master=0, optim=8, activation=4),
}

# which states are divided over the N data-parallel ranks
SHARDING = {
    "fsdp_full_shard": dict(weights=True, grads=True, optim=True),   # FSDP FULL_SHARD / FSDP2
    "zero3": dict(weights=True, grads=True, optim=True),             # DeepSpeed ZeRO stage 3
    "zero2": dict(weights=False, grads=True, optim=True),            # = FSDP SHARD_GRAD_OP
    "ddp": dict(weights=False, grads=False, optim=False),            # plain data parallel
}


@dataclass
class TrainSetup:
    """What a training run looks like to the planner (all fields are choices to tweak)."""

    seq_len: int = 4096
    micro_batch: int = 1                     # sequences per GPU per forward
    strategy: str = "fsdp_full_shard"        # key of SHARDING
    activation_checkpointing: bool = True    # per decoder layer (accelerate's fsdp_activation_checkpointing)
    precision: str | Precision = "bf16-mixed"   # key of PRECISIONS, or a Precision
    attention: str = "fused"                 # "fused" (flash/flex/SDPA) | "eager" (keeps (H, T, T) scores)
    gpu_memory_gb: float = 80.0
    usable_fraction: float = 0.9             # left after CUDA context, NCCL buffers, fragmentation (a choice)
    prefetch: int = 2                        # unsharded units alive at once (current + prefetched)
    foreach_optimizer: bool = True           # AdamW foreach (CUDA default): one fp32 temp per sharded param

    def __post_init__(self):
        if self.strategy not in SHARDING:
            raise ValueError(f"strategy must be one of {sorted(SHARDING)}, got {self.strategy!r}")
        if not isinstance(self.precision, Precision) and self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {sorted(PRECISIONS)}, got {self.precision!r}")
        if self.attention not in ("fused", "eager"):
            raise ValueError(f"attention must be 'fused' or 'eager', got {self.attention!r}")
        if self.seq_len < 1 or self.micro_batch < 1:
            raise ValueError(f"seq_len and micro_batch must be >= 1, got {self.seq_len}, {self.micro_batch}")

    @property
    def bytes(self) -> Precision:
        return self.precision if isinstance(self.precision, Precision) else PRECISIONS[self.precision]


@dataclass
class MemoryPlan:
    """Bytes per GPU (each field), for one model, setup and GPU count."""

    n_gpus: int
    weights: float
    grads: float
    master: float
    optimizer: float
    activations: float
    buffers: float
    optimizer_temp: float

    @property
    def static(self) -> float:
        return self.weights + self.grads + self.master + self.optimizer

    @property
    def peak(self) -> float:
        return self.static + max(self.activations + self.buffers, self.optimizer_temp)

    def table(self) -> dict[str, float]:
        """GB per term (1 GB = 1e9 bytes), for printing."""
        keys = ("weights", "grads", "master", "optimizer", "activations", "buffers", "optimizer_temp")
        return {k: getattr(self, k) / GB for k in keys} | {"peak": self.peak / GB}


def activation_bytes_per_token_layer(cfg: Step1Config, act: int = 2, attention: str = "fused",
                                     kv_len: int | None = None) -> float:
    """``a_layer``: bytes saved for backward by one decoder layer, per token (module docstring).
    ``kv_len`` (S) matters only for the eager kernel's (H, T, S) scores; default = max_seq_len."""
    d, f = cfg.hidden_size, cfg.intermediate_size
    kv = cfg.num_attention_groups * cfg.head_dim
    a = 2 * 8 * d + act * (2 * d + (d + 2 * kv + d) + d + 4 * f)
    if attention == "eager":
        S = kv_len or cfg.max_seq_len
        H = cfg.num_attention_heads
        # repeated k, v replace the GQA-sized ones; softmax in fp32 plus its compute-dtype copy
        a += act * 2 * (d - kv) + 4 * H * S + (act * H * S if act != 4 else 0)
    return a


def activation_bytes(cfg: Step1Config, setup: TrainSetup) -> float:
    """Activation bytes per GPU at the end of the forward pass (module docstring)."""
    act = setup.bytes.activation
    tokens = setup.micro_batch * setup.seq_len
    a_layer = activation_bytes_per_token_layer(cfg, act, setup.attention, setup.seq_len)
    L, d, V = cfg.num_hidden_layers, cfg.hidden_size, cfg.vocab_size
    head = (act + 8) * V + 8 * d + act * d     # logits, fp32 copy, log-softmax; final norm; lm_head input
    if setup.activation_checkpointing:
        # the head's tensors are freed before the last layer is recomputed in backward
        return tokens * (L * act * d + max(head, a_layer))
    return tokens * (L * a_layer + head)


def largest_unit_params(cfg: Step1Config) -> int:
    """Parameters of the largest FSDP unit: a decoder layer, the embedding, or norm + lm_head."""
    n = count_parameters(cfg)
    return max(n["per_layer"], n["embed_tokens"], n["lm_head"] + n["norm"])


def memory_per_gpu(cfg: Step1Config, setup: TrainSetup, n_gpus: int) -> MemoryPlan:
    """The five-term estimate of the module docstring for ``n_gpus`` data-parallel ranks."""
    if n_gpus < 1:
        raise ValueError(f"n_gpus must be >= 1, got {n_gpus}")
    p = setup.bytes
    shard = SHARDING[setup.strategy]
    P = count_parameters(cfg)["total"]
    div = lambda on: n_gpus if on else 1                                  # noqa: E731
    weights = P * p.weight / div(shard["weights"])
    grads = P * p.grad / div(shard["grads"])
    master = P * p.master / div(shard["optim"])
    optim = P * p.optim / div(shard["optim"])
    unit = largest_unit_params(cfg)
    buffers = unit * (setup.prefetch * p.weight + p.grad) if shard["weights"] and n_gpus > 1 else 0.0
    # foreach AdamW: one fp32 temporary per (sharded) parameter; per-tensor: two of the largest tensor
    opt_temp = 4 * P / div(shard["optim"]) if setup.foreach_optimizer else 2 * 4 * unit
    return MemoryPlan(n_gpus, weights, grads, master, optim, activation_bytes(cfg, setup), buffers, opt_temp)


@dataclass
class FitResult:
    """The fewest GPUs whose memory holds one shard of the run, and the plan at that count."""

    n_gpus: int | None            # None: no GPU count fits (activations alone exceed a GPU)
    n_nodes: int | None           # with ``gpus_per_node`` GPUs each
    plan: MemoryPlan | None
    reason: str = ""


def min_gpus(cfg: Step1Config, setup: TrainSetup, gpus_per_node: int = 8, max_gpus: int = 1 << 16) -> FitResult:
    """Smallest N with ``memory_per_gpu(cfg, setup, N).peak <= usable_fraction * gpu_memory``.

    The sharded terms fall as 1/N, the activations and buffers do not, so if those alone
    exceed the GPU no N fits (then: checkpointing, a shorter sequence, or tensor/sequence
    parallelism, which this planner does not model)."""
    budget = setup.gpu_memory_gb * GB * setup.usable_fraction
    floor = memory_per_gpu(cfg, setup, max_gpus)          # what no number of GPUs can shard away
    if floor.peak > budget:
        return FitResult(None, None, None, f"does not fit in {budget / GB:.1f} GB at any GPU count up to "
                                           f"{max_gpus} ({floor.peak / GB:.1f} GB per GPU there)")
    n = 1
    while memory_per_gpu(cfg, setup, n).peak > budget:      # peak falls with n: the first fit is the minimum
        n += 1
    return FitResult(n, math.ceil(n / gpus_per_node), memory_per_gpu(cfg, setup, n))


# ----------------------------------------------------------------------------- time

def step_time_s(cfg: Step1Config, tokens_per_step: int, n_gpus: int, seq_len: int, mfu: float = 0.35,
                peak_flops: float = H100_BF16_PEAK) -> float:
    """Seconds per optimizer step = tokens * flops_per_token / (N * peak * MFU)."""
    if not 0 < mfu <= 1:
        raise ValueError(f"mfu must be in (0, 1], got {mfu}")
    return tokens_per_step * flops_per_token(cfg, seq_len) / (n_gpus * peak_flops * mfu)


def training_days(cfg: Step1Config, total_tokens: float, n_gpus: int, seq_len: int, mfu: float = 0.35,
                  peak_flops: float = H100_BF16_PEAK) -> float:
    """Days to train on ``total_tokens`` (e.g. the 1.2T tokens of pre-training stage 1)."""
    return step_time_s(cfg, total_tokens, n_gpus, seq_len, mfu, peak_flops) / 86_400


# ----------------------------------------------------------------------------- inference

@dataclass
class InferencePlan:
    """Per-GPU bytes for serving with tensor parallelism ``tp`` (weights and KV split tp ways)."""

    tp: int | None
    weights: float = 0.0
    kv_cache: float = 0.0
    kv_bytes_per_token: int = 0
    reason: str = ""

    @property
    def total(self) -> float:
        return self.weights + self.kv_cache


def inference_plan(cfg: Step1Config, batch: int, context: int, gpu_memory_gb: float = 80.0,
                   usable_fraction: float = 0.9, weight_bytes: int = 2, kv_bytes: int = 2) -> InferencePlan:
    """The smallest tensor-parallel size (a divisor of the heads, 1, 2, 4, ...) that holds
    ``P * weight_bytes / tp`` of weights plus ``batch * context * kv_bytes_per_token / min(tp, G)``
    of KV cache (KV heads split up to G ways; beyond that each rank keeps whole groups)."""
    if batch < 1 or context < 1:
        raise ValueError(f"batch and context must be >= 1, got {batch}, {context}")
    P = count_parameters(cfg)["total"]
    per_tok = kv_cache_bytes_per_token(cfg, kv_bytes)
    budget = gpu_memory_gb * GB * usable_fraction
    tp = 1
    while tp <= cfg.num_attention_heads:
        if cfg.num_attention_heads % tp == 0:
            w = P * weight_bytes / tp
            kv = batch * context * per_tok / min(tp, cfg.num_attention_groups)
            if w + kv <= budget:
                return InferencePlan(tp, w, kv, per_tok)
        tp *= 2
    return InferencePlan(None, kv_bytes_per_token=per_tok,
                         reason=f"weights + KV exceed {budget / GB:.1f} GB even split {cfg.num_attention_heads} ways")


# ----------------------------------------------------------------------------- the 130B dry run

@dataclass
class DryRun:
    """Per-rank parameter bytes after FSDP2 ``fully_shard`` on the meta device (no real memory)."""

    world_size: int
    rank: int
    total_params: int
    local_params: int
    dtype_bytes: int
    units: int                                     # fully_shard calls (layers + embed + root)
    local_bytes: float = field(init=False)

    def __post_init__(self):
        self.local_bytes = self.local_params * self.dtype_bytes


def fsdp_dry_run(cfg: Step1Config, world_size: int, rank: int = 0, dtype_bytes: int = 2) -> DryRun:
    """Build ``Step1ForCausalLM(cfg)`` on the meta device, shard it with FSDP2 over a *fake*
    process group of ``world_size`` ranks (torch's testing backend: collectives are no-ops),
    and count this rank's parameter elements. FSDP2 shards each parameter along dim 0 in
    ceil(dim0 / N)-row chunks, so rank 0 holds the most. Uses the global process group, so
    it refuses to run inside an initialised one (run it in its own process)."""
    import torch
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    from aqaa_ref.backbone.model import Step1ForCausalLM
    from aqaa_ref.compat import fake_store

    if dist.is_initialized():
        raise RuntimeError("fsdp_dry_run needs its own process: a process group is already initialised")
    if not 0 <= rank < world_size:
        raise ValueError(f"rank must be in [0, {world_size}), got {rank}")
    dist.init_process_group("fake", store=fake_store(), rank=rank, world_size=world_size)
    try:
        mesh = init_device_mesh("cpu", (world_size,))
        with torch.device("meta"):
            model = Step1ForCausalLM(cfg)
        total = sum(p.numel() for p in model.parameters())
        units = 0
        for layer in model.model.layers:
            fully_shard(layer, mesh=mesh)
            units += 1
        fully_shard(model.model.embed_tokens, mesh=mesh)
        fully_shard(model, mesh=mesh)                  # root: final norm + lm_head
        units += 2
        local = sum(p.to_local().numel() for p in model.parameters())
        return DryRun(world_size, rank, total, local, dtype_bytes, units)
    finally:
        dist.destroy_process_group()


def with_setup(setup: TrainSetup, **changes) -> TrainSetup:
    """``dataclasses.replace`` that re-validates (for sweeps in the notebook)."""
    return replace(setup, **changes)

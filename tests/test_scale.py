"""aqaa_ref.scaling.planner: planner arithmetic by hand, meta-device counts, the fake-PG dry run, launch files."""
import json
import math
from pathlib import Path

import pytest
import torch
import yaml

from aqaa_ref.backbone.model import STEP1_PRESETS, Step1Config, Step1ForCausalLM, count_parameters, flops_per_token
from aqaa_ref.scaling.planner import (GB, H100_BF16_PEAK, Precision, TrainSetup, activation_bytes,
                                      activation_bytes_per_token_layer, fsdp_dry_run, inference_plan, memory_per_gpu,
                                      min_gpus, step_time_s)

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "configs" / "accelerate"

# one layer, small enough to count by hand: d=8, f=16, 2 heads of 4, 1 KV group (kv = 4), V=10
ONE = Step1Config(vocab_size=10, hidden_size=8, intermediate_size=16, num_attention_heads=2,
                  num_attention_groups=1, num_hidden_layers=1, max_seq_len=32)


def test_one_layer_parameter_count_by_hand():
    # q,o: 8*8 each; k,v: 8*4 each; gate,up,down: 8*16 each; 2 norms of 8
    per_layer = 2 * 64 + 2 * 32 + 3 * 128 + 2 * 8
    assert per_layer == 592
    assert count_parameters(ONE)["total"] == 592 + 80 + 80 + 8 == 760


def test_activation_bytes_by_hand():
    # norms 2 * 8d = 128; bf16 * (2d + d + 2kv + d + d + 4f) = 2 * (16 + 8 + 8 + 8 + 8 + 64) = 224
    assert activation_bytes_per_token_layer(ONE, act=2) == 128 + 224 == 352
    # eager adds k,v repeated to d (2 * 2 * (8 - 4)), fp32 softmax 4*H*S, its bf16 copy 2*H*S; S = 16
    assert activation_bytes_per_token_layer(ONE, 2, "eager", kv_len=16) == 352 + 16 + 128 + 64
    head = (2 + 8) * 10 + 8 * 8 + 2 * 8                          # logits + fp32 copy + log-softmax; norm
    no_ckpt = TrainSetup(seq_len=16, micro_batch=2, activation_checkpointing=False)
    assert activation_bytes(ONE, no_ckpt) == 32 * (352 + head) == 17_024
    ckpt = TrainSetup(seq_len=16, micro_batch=2, activation_checkpointing=True)
    assert activation_bytes(ONE, ckpt) == 32 * (2 * 8 + max(head, 352)) == 11_776


def test_memory_per_gpu_by_hand_for_each_strategy():
    s = TrainSetup(seq_len=16, micro_batch=2, activation_checkpointing=False)
    full = memory_per_gpu(ONE, s, 4)                            # 16 bytes/param, all sharded 4 ways
    assert (full.weights, full.grads, full.master, full.optimizer) == (380, 380, 760, 1520)
    assert full.static == 760 * 16 / 4
    assert full.buffers == 592 * (2 * 2 + 2)                     # largest unit = the layer: 2 gathered + 1 grad
    assert full.optimizer_temp == 4 * 760 / 4                    # foreach AdamW: one fp32 copy of the shard
    assert full.peak == 3040 + 17_024 + 3552
    zero2 = memory_per_gpu(ONE, TrainSetup(seq_len=16, micro_batch=2, strategy="zero2",
                                           activation_checkpointing=False), 4)
    assert (zero2.weights, zero2.grads, zero2.master, zero2.optimizer, zero2.buffers) == (1520, 380, 760, 1520, 0)
    ddp = memory_per_gpu(ONE, TrainSetup(seq_len=16, micro_batch=2, strategy="ddp"), 4)
    assert ddp.static == 760 * 16 and ddp.buffers == 0
    fp32 = memory_per_gpu(ONE, TrainSetup(precision="fp32", strategy="ddp"), 1)
    assert (fp32.weights, fp32.grads, fp32.master, fp32.optimizer) == (3040, 3040, 0, 6080)
    custom = TrainSetup(precision=Precision(weight=2, grad=2, master=0, optim=4, activation=2), strategy="ddp")
    assert memory_per_gpu(ONE, custom, 1).static == 760 * 8


def test_min_gpus_is_the_first_count_that_fits_130b():
    cfg = Step1Config.from_preset("step-audio-130b")
    setup = TrainSetup(seq_len=4096, micro_batch=1, activation_checkpointing=True, gpu_memory_gb=80)
    fit = min_gpus(cfg, setup)
    budget = 80 * GB * 0.9
    assert fit.plan.peak <= budget < memory_per_gpu(cfg, setup, fit.n_gpus - 1).peak
    # closed form while the optimizer temporaries do not bind: static / (budget - unsharded terms)
    plan = fit.plan
    static_total = count_parameters(cfg)["total"] * 16
    assert fit.n_gpus == math.ceil(static_total / (budget - plan.activations - plan.buffers)) == 42
    assert fit.n_nodes == 6
    assert min_gpus(cfg, TrainSetup(seq_len=8192)).n_gpus == 56
    no_ckpt = min_gpus(cfg, TrainSetup(seq_len=4096, activation_checkpointing=False))
    assert no_ckpt.n_gpus is None and "does not fit" in no_ckpt.reason


def test_step_time_and_inference_plan_by_hand():
    cfg = Step1Config.from_preset("step-audio-130b")
    t = step_time_s(cfg, 4_194_304, 64, 4096, mfu=0.35)
    assert t == pytest.approx(4_194_304 * flops_per_token(cfg, 4096) / (64 * H100_BF16_PEAK * 0.35))
    inf = inference_plan(cfg, batch=1, context=32_768)
    assert inf.kv_bytes_per_token == 2 * 88 * 8 * 128 * 2 == 360_448
    assert inf.tp == 4                                     # the README's 4 x 80 GB for the 130B chat model
    assert inf.weights == count_parameters(cfg)["total"] * 2 / 4
    assert inference_plan(cfg, batch=16, context=32_768).tp == 8       # KV splits at most G = 8 ways
    assert inference_plan(cfg, batch=4096, context=32_768).tp is None


@pytest.mark.parametrize("bad", [dict(strategy="zero4"), dict(precision="fp8"), dict(attention="ring"),
                                 dict(seq_len=0)])
def test_bad_setups_fail_in_one_line(bad):
    with pytest.raises(ValueError, match="must"):
        TrainSetup(**bad)
    with pytest.raises(ValueError, match="mfu"):
        step_time_s(ONE, 1, 1, 1, mfu=0)


@pytest.mark.parametrize("preset", sorted(STEP1_PRESETS))
def test_meta_device_parameter_count_equals_count_parameters(preset):
    cfg = Step1Config.from_preset(preset, **({"vocab_size": 2048} if preset == "toy" else {}))
    with torch.device("meta"):
        model = Step1ForCausalLM(cfg)
    assert sum(p.numel() for p in model.parameters()) == count_parameters(cfg)["total"]
    if preset == "step-audio-130b":
        assert count_parameters(cfg)["total"] == pytest.approx(131.95e9, rel=1e-4)


def test_fsdp_dry_run_130b_matches_the_planner():
    if torch.distributed.is_initialized():
        pytest.skip("a process group is already initialised in this process")
    cfg = Step1Config.from_preset("step-audio-130b")
    dry = fsdp_dry_run(cfg, world_size=64)
    P = count_parameters(cfg)["total"]
    assert dry.total_params == P and dry.units == 90         # 88 layers + embedding + root
    assert dry.local_params * 64 == P                         # every dim 0 divides by 64: even shards
    plan = memory_per_gpu(cfg, TrainSetup(), 64)
    assert dry.local_bytes == plan.weights                    # bf16 weights per rank, as planned


def test_fsdp_dry_run_uneven_shards_round_up_on_the_first_ranks():
    if torch.distributed.is_initialized():
        pytest.skip("a process group is already initialised in this process")
    # dim 0 of 8 over 3 ranks: rows 3, 3, 2; vocab 10 -> 4, 4, 2; kv 4 -> 2, 2, 0; ff 16 -> 6, 6, 4
    first, last = fsdp_dry_run(ONE, 3, rank=0), fsdp_dry_run(ONE, 3, rank=2)
    assert first.local_params + first.local_params + last.local_params == 760
    assert first.local_params > 760 / 3 > last.local_params


# ----------------------------------------------------------------------------- launch files

def _launch_env(path: Path) -> tuple:
    """What ``accelerate launch --config_file path`` would do: its parsed args and child env."""
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils.launch import prepare_deepspeed_cmd_env, prepare_multi_gpu_env

    args = launch_command_parser().parse_args(["--config_file", str(path), "train.py"])
    args, defaults, _ = _validate_launch_command(args)
    if args.use_deepspeed:
        args.deepspeed_fields_from_accelerate_config = ",".join(defaults.deepspeed_config)
        _, env = prepare_deepspeed_cmd_env(args)
    else:
        env = prepare_multi_gpu_env(args)
    return args, defaults, env


@pytest.mark.parametrize("name", ["fsdp_1node_8gpu", "fsdp_8nodes_8gpu", "fsdp_cpu_2proc"])
def test_fsdp_launch_files_build_accelerates_fsdp2_plugin(name, monkeypatch):
    from accelerate import FullyShardedDataParallelPlugin
    from accelerate.utils import DistributedType

    raw = yaml.safe_load((CONFIGS / f"{name}.yaml").read_text())
    args, defaults, env = _launch_env(CONFIGS / f"{name}.yaml")
    assert defaults.distributed_type == DistributedType.FSDP and args.use_fsdp
    assert args.num_processes == raw["num_processes"] and args.num_machines == raw["num_machines"]
    for k, v in env.items():
        if k.startswith("FSDP_"):
            monkeypatch.setenv(k, v)
    plugin = FullyShardedDataParallelPlugin()                 # what the launched processes construct
    assert plugin.fsdp_version == 2 and plugin.reshard_after_forward is True
    assert plugin.transformer_cls_names_to_wrap == ["Step1DecoderLayer"]
    assert plugin.activation_checkpointing == (name != "fsdp_cpu_2proc")
    assert (env["ACCELERATE_MIXED_PRECISION"] == "bf16") == (name != "fsdp_cpu_2proc")
    assert raw.get("use_cpu", False) == (name == "fsdp_cpu_2proc")


def test_deepspeed_zero3_launch_file_and_its_json():
    """Validated without importing deepspeed (not installed here; it needs GPUs)."""
    from accelerate.utils import DistributedType

    args, defaults, env = _launch_env(CONFIGS / "deepspeed_zero3.yaml")
    assert defaults.distributed_type == DistributedType.DEEPSPEED and args.use_deepspeed
    assert env["ACCELERATE_USE_DEEPSPEED"] == "true" and env["ACCELERATE_DEEPSPEED_ZERO3_INIT"] == "true"
    ds = json.loads((ROOT / env["ACCELERATE_DEEPSPEED_CONFIG_FILE"]).read_text())
    zero = ds["zero_optimization"]
    assert zero["stage"] == 3 and zero["stage3_gather_16bit_weights_on_model_save"] is True
    assert ds["bf16"]["enabled"] == "auto" and env["ACCELERATE_MIXED_PRECISION"] == "bf16"
    # the shared loop has no dataloader for accelerate to read batch sizes from: no "auto" there,
    # and DeepSpeed steps inside accelerator.backward, so one micro-batch per step
    assert ds["train_micro_batch_size_per_gpu"] == 1 and ds["gradient_accumulation_steps"] == 1
    known = {"bf16", "fp16", "zero_optimization", "gradient_clipping", "gradient_accumulation_steps",
             "train_micro_batch_size_per_gpu", "train_batch_size", "steps_per_print", "wall_clock_breakdown",
             "optimizer", "scheduler", "activation_checkpointing"}
    assert set(ds) <= known

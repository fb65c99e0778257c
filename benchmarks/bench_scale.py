"""The planner (aqaa_ref.scaling.planner) against measured memory, and the GPU scaling measurements.

CPU (always): one fp32 training step (forward, backward, AdamW step; gradients kept between
steps, as FSDP / ZeRO keep their gradient buffers) of small presets, with and without
activation checkpointing, each in a fresh process. Two measurements of the peak:

- ``tensors``: torch's MemTracker (torch.distributed._tools), a dispatch-mode tracker that
  adds up the live tensor storages by kind (parameters, gradients, optimizer state,
  activations): what an allocator must hold, without fragmentation;
- ``rss``: the process's resident-set high-water mark (VmHWM) minus its size before the
  model was built: what the OS saw, including allocator slack.

and the planner's ``memory_per_gpu(cfg, TrainSetup(strategy="ddp", precision="fp32", ...), 1)``.

GPU (only when torch.cuda.is_available()):
1. the ~1B preset's training step in bf16 with the flex_attention sqrt-ALiBi kernel:
   tokens/s, MFU against the GPU's dense bf16 peak, and peak memory vs the planner;
2. one decoder layer at 130B width (d 12288, 96 heads, 8 KV groups, FFN 31232),
   forward + backward, extrapolated to the whole model's step time on N GPUs, next to the
   35% MFU of the Step-Audio report.

    .venv/bin/python benchmarks/bench_scale.py            # CPU: about a minute on 2 cores
    .venv/bin/python benchmarks/bench_scale.py --quick    # toy preset only
    .venv/bin/python benchmarks/bench_scale.py --parity   # the 2-process FSDP vs 1-process curves

Results: benchmarks/results/scale_cpu_memory.json (scale_fsdp_cpu_2proc_parity.json with
--parity), and scale_gpu_<GPU name>.json with a GPU.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

from aqaa_ref.backbone.model import Step1Config, Step1DecoderLayer, count_parameters, flops_per_token
from aqaa_ref.scaling.planner import H100_BF16_PEAK, Precision, TrainSetup, memory_per_gpu, step_time_s
from aqaa_ref.scaling.measure import build, fsdp_parity, measure_step_memory, planned_step_memory
from aqaa_ref.training.loop import lm_loss

RESULTS = Path(__file__).parent / "results"
PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "H800": 989e12, "A100": 312e12, "L4": 121e12}

# (preset, vocab, seq, batch): the toy with a small vocab, the 100m preset with the real vocab
CPU_CASES = [("toy", 2048, 256, 4), ("100m", 74_752, 256, 2)]


def bench_cpu(quick: bool) -> dict:
    rows = []
    for preset, vocab, seq, batch in CPU_CASES[:1] if quick else CPU_CASES:
        for ckpt in (False, True):
            row = {"preset": preset, "vocab": vocab, "seq": seq, "batch": batch, "checkpointing": ckpt,
                   "params": count_parameters(Step1Config.from_preset(preset, vocab_size=vocab))["total"]}
            for method in ("tensors", "rss"):
                cmd = [sys.executable, __file__, "--one", json.dumps([preset, vocab, seq, batch, ckpt, method])]
                res = subprocess.run(cmd, capture_output=True, text=True, check=True)
                row[method] = json.loads(res.stdout.strip().splitlines()[-1])
            row["planned"] = planned_step_memory(preset, vocab, seq, batch, ckpt)
            p, t, r = row["planned"]["peak"], row["tensors"]["peak"], row["rss"]["peak"]
            row["planned_over_tensors"], row["planned_over_rss"] = p / t, p / r
            rows.append(row)
            print(f"  {preset:5s} T={seq} b={batch} ckpt={ckpt!s:5s}  planned {p / 1e6:8.1f} MB  "
                  f"tensors {t / 1e6:8.1f} MB ({p / t - 1:+.1%})  rss {r / 1e6:8.1f} MB ({p / r - 1:+.1%})  "
                  f"[activations: planned {row['planned']['activations'] / 1e6:.1f}, "
                  f"tracked {row['tensors'].get('act', 0) / 1e6:.1f} MB]")
    return {"device": "cpu", "precision": "fp32", "optimizer": "AdamW (per-tensor loop), grads kept",
            "attention_kernel": "sdpa", "torch": torch.__version__, "load_average_1min": os.getloadavg()[0],
            "results": rows}


# ----------------------------------------------------------------------------- GPU

def _cuda_time(fn, steps: int) -> float:
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - t0) / steps


def bench_gpu_1b(args, peak: float | None) -> dict:
    """The 1b preset in bf16 (parameters, gradients and AdamW moments all bf16) with flex."""
    dev = torch.device("cuda")
    torch.manual_seed(0)
    torch.cuda.reset_peak_memory_stats()
    cfg, model = build("1b", 74_752, False, kernel="flex", device=dev, dtype=torch.bfloat16)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    ids = torch.randint(4, cfg.vocab_size, (args.gpu_batch, args.gpu_seq), device=dev)
    b = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids}

    def step():
        loss, _ = lm_loss(model, b, float(ids.numel()))
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=False)

    for _ in range(3):
        step()
    torch.cuda.reset_peak_memory_stats()
    sec = _cuda_time(step, args.steps)
    tps = ids.numel() / sec
    measured = torch.cuda.max_memory_allocated()
    setup = TrainSetup(seq_len=args.gpu_seq, micro_batch=args.gpu_batch, strategy="ddp",
                       precision=Precision(weight=2, grad=2, master=0, optim=4, activation=2),
                       activation_checkpointing=False, foreach_optimizer=True)
    plan = memory_per_gpu(cfg, setup, 1)
    mfu = tps * flops_per_token(cfg, args.gpu_seq) / peak if peak else None
    print(f"  1b bf16 flex: {tps:,.0f} tokens/s, MFU {mfu if mfu is None else f'{mfu:.1%}'}, "
          f"peak memory {measured / 1e9:.2f} GB (planned {plan.peak / 1e9:.2f} GB)")
    model = opt = None        # free the GPU memory (step() holds them in its closure)
    torch.cuda.empty_cache()
    return {"preset": "1b", "batch": args.gpu_batch, "seq": args.gpu_seq, "tokens_per_s": tps, "mfu": mfu,
            "peak_memory_bytes": measured, "planned_peak_bytes": plan.peak,
            "planned_over_measured": plan.peak / measured}


def bench_gpu_130b_layer(args, peak: float | None) -> dict:
    """One 130B-width decoder layer, bf16, flex attention, forward + backward on (b, T, d)."""
    from aqaa_ref.backbone.attention import alibi_slopes, flex_attention_alibi

    dev = torch.device("cuda")
    cfg = Step1Config.from_preset("step-audio-130b")
    torch.manual_seed(0)
    layer = Step1DecoderLayer(cfg, 0).to(dev, torch.bfloat16)
    slopes = alibi_slopes(cfg.num_attention_heads).to(dev)
    attend = lambda q, k, v: flex_attention_alibi(q, k, v, slopes)           # noqa: E731
    x = torch.randn(args.layer_batch, args.layer_seq, cfg.hidden_size, device=dev, dtype=torch.bfloat16,
                    requires_grad=True)

    def fwd_bwd():
        layer(x, attend).float().pow(2).mean().backward()

    for _ in range(3):
        fwd_bwd()
    sec = _cuda_time(fwd_bwd, args.steps)
    tokens = x.shape[0] * x.shape[1]
    n = count_parameters(cfg)
    layer_flops = tokens * (6 * n["per_layer"] + 6 * cfg.hidden_size * args.layer_seq)
    layer_mfu = layer_flops / sec / peak if peak else None
    # the whole model: L layers at the measured rate, plus the lm_head at the same MFU;
    # ideal data-parallel scaling (FSDP's all-gathers hidden under compute)
    head_sec = tokens * 6 * n["lm_head"] / (peak * layer_mfu) if peak else 0.0
    model_sec_per_token = (cfg.num_hidden_layers * sec + head_sec) / tokens
    rows = []
    for n_gpus in args.gpus:
        t = model_sec_per_token * args.global_tokens / n_gpus
        t35 = step_time_s(cfg, args.global_tokens, n_gpus, args.layer_seq, 0.35, peak or H100_BF16_PEAK)
        rows.append({"n_gpus": n_gpus, "step_s_extrapolated": t, "step_s_at_35pct_mfu": t35})
        print(f"  130B step of {args.global_tokens:,} tokens on {n_gpus} GPUs: {t:.1f} s extrapolated "
              f"from one layer, {t35:.1f} s at the report's 35% MFU")
    print(f"  130B-width layer fwd+bwd: {sec * 1e3:.1f} ms for {tokens} tokens, MFU "
          f"{layer_mfu if layer_mfu is None else f'{layer_mfu:.1%}'} (report: 35% on H800s)")
    return {"layer_seconds": sec, "tokens": tokens, "seq": args.layer_seq, "layer_mfu": layer_mfu,
            "reported_mfu": 0.35, "global_tokens": args.global_tokens, "steps": rows}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="toy preset only on CPU")
    ap.add_argument("--one", help=argparse.SUPPRESS)             # internal: one measurement, JSON out
    ap.add_argument("--parity", action="store_true", help="only the 2-process vs 1-process loss curves")
    ap.add_argument("--steps", type=int, default=5, help="timed GPU steps")
    ap.add_argument("--gpu-batch", type=int, default=4)
    ap.add_argument("--gpu-seq", type=int, default=2048)
    ap.add_argument("--layer-batch", type=int, default=1)
    ap.add_argument("--layer-seq", type=int, default=4096)
    ap.add_argument("--global-tokens", type=int, default=4 * 1024 * 1024, help="tokens per optimizer step")
    ap.add_argument("--gpus", type=int, nargs="+", default=[64, 256, 1024, 3072])
    args = ap.parse_args()
    if args.one:
        print(json.dumps(measure_step_memory(*json.loads(args.one))))
        return
    RESULTS.mkdir(exist_ok=True)
    if args.parity:
        import tempfile
        with tempfile.TemporaryDirectory() as tmp:
            res = fsdp_parity(Path(tmp))
        (RESULTS / "scale_fsdp_cpu_2proc_parity.json").write_text(json.dumps(res, indent=2))
        return
    print(f"CPU memory, planned vs measured (fp32, AdamW, fresh process each; load average "
          f"{os.getloadavg()[0]:.1f})")
    cpu = bench_cpu(args.quick)
    (RESULTS / "scale_cpu_memory.json").write_text(json.dumps(cpu, indent=2))
    if torch.cuda.is_available():
        gpu = torch.cuda.get_device_name()
        peak = next((v for k, v in PEAK_BF16.items() if k in gpu), None)
        print(f"GPU: {gpu} (dense bf16 peak {peak})")
        out = {"gpu": gpu, "peak_bf16_flops": peak, "torch": torch.__version__,
               "1b_training_step": bench_gpu_1b(args, peak), "130b_layer": bench_gpu_130b_layer(args, peak)}
        (RESULTS / f"scale_gpu_{gpu.replace(' ', '_')}.json").write_text(json.dumps(out, indent=2))
    else:
        print("No GPU available (torch.cuda.is_available() is False): the 1b bf16/flex training step, its "
              "MFU, and the 130B-width layer extrapolation were not measured.")
    print(f"results in {RESULTS}/")


if __name__ == "__main__":
    main()

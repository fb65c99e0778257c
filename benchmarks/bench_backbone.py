"""Step-1 backbone throughput.

CPU (always): toy-preset training tokens/s (AdamW step included) for fp32 and bf16 autocast,
with the eager and SDPA attention kernels.
GPU (when torch.cuda.is_available()): the ~1B preset's forward+backward tokens/s and MFU in
bf16, SDPA-with-bias against flex_attention (bias computed in score_mod).
Results are printed and saved as JSON under benchmarks/results/.

    .venv/bin/python benchmarks/bench_backbone.py            # 1-2 minutes on 2 cores
    .venv/bin/python benchmarks/bench_backbone.py --quick    # a few steps only
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from contextlib import nullcontext
from pathlib import Path

import torch

from aqaa_ref.backbone.model import Step1Config, Step1ForCausalLM, count_parameters, estimate_mfu
from aqaa_ref.backbone.vocab_extension import param_groups

RESULTS = Path(__file__).parent / "results"
PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L4": 121e12}   # dense bf16 FLOP/s


class Trainer:
    """One model + AdamW on fixed random ids; ``time(steps)`` -> tokens/s of fwd+bwd(+step)."""

    def __init__(self, model, batch: int, seq: int, device, autocast_dtype=None, optimizer: bool = True):
        self.model, self.device = model.train(), device
        self.opt = torch.optim.AdamW(param_groups(model, lr=1e-4)) if optimizer else None
        self.ids = torch.randint(0, model.config.vocab_size, (batch, seq), device=device)
        self.ctx = (lambda: torch.autocast(device.type, dtype=autocast_dtype)) if autocast_dtype else nullcontext

    def step(self):
        with self.ctx():
            loss = self.model(self.ids, labels=self.ids).loss
        loss.backward()
        if self.opt:
            self.opt.step()
        self.model.zero_grad(set_to_none=True)

    def time(self, steps: int) -> float:
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(steps):
            self.step()
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        return self.ids.numel() * steps / (time.perf_counter() - t0)


def best_of_rounds(trainers: dict, steps: int, rounds: int, warmup: int = 2) -> dict:
    """Warm each up, then time the settings in turn for several rounds; keep each one's best.
    Alternating rounds + best-of make the comparison fair on a machine shared with other jobs."""
    for t in trainers.values():
        for _ in range(warmup):
            t.step()
    best = {k: 0.0 for k in trainers}
    for _ in range(rounds):
        for k, t in trainers.items():
            best[k] = max(best[k], t.time(steps))
    return best


def bench_cpu(args) -> dict:
    dev = torch.device("cpu")
    trainers = {}
    for kernel in ("eager", "sdpa"):
        for name, dtype in (("fp32", None), ("bf16-autocast", torch.bfloat16)):
            torch.manual_seed(0)
            cfg = Step1Config.from_preset("toy", vocab_size=args.vocab, attention_kernel=kernel)
            trainers[(kernel, name)] = Trainer(Step1ForCausalLM(cfg), args.batch, args.seq, dev, dtype)
    best = best_of_rounds(trainers, args.steps, args.rounds)
    rows = []
    for (kernel, name), tps in best.items():
        rows.append({"kernel": kernel, "precision": name, "tokens_per_s": round(tps)})
        print(f"  toy  {kernel:5s} {name:14s} {tps:8.0f} tokens/s")
    n = count_parameters(Step1Config.from_preset("toy", vocab_size=args.vocab))["total"]
    return {"device": "cpu", "cpu": platform.processor() or platform.machine(),
            "threads": torch.get_num_threads(), "load_average_1min": os.getloadavg()[0], "preset": "toy",
            "params": n, "vocab_size": args.vocab, "batch": args.batch, "seq": args.seq,
            "timing": f"best of {args.rounds} rounds x {args.steps} steps", "optimizer": "AdamW",
            "results": rows}


def bench_gpu(args) -> dict:
    dev = torch.device("cuda")
    gpu = torch.cuda.get_device_name()
    peak = next((v for k, v in PEAK_BF16.items() if k in gpu), None)
    rows = []
    for kernel in ("sdpa", "flex"):
        torch.manual_seed(0)
        cfg = Step1Config.from_preset("1b", attention_kernel=kernel)
        model = Step1ForCausalLM(cfg).to(dev, dtype=torch.bfloat16)
        trainer = Trainer(model, args.gpu_batch, args.gpu_seq, dev, optimizer=False)
        tps = best_of_rounds({kernel: trainer}, args.steps, args.rounds, warmup=3)[kernel]
        mfu = estimate_mfu(cfg, tps, args.gpu_seq, peak) if peak else None
        rows.append({"kernel": kernel, "tokens_per_s": round(tps), "mfu": mfu})
        print(f"  1b   {kernel:5s} bf16 fwd+bwd {tps:9.0f} tokens/s  MFU {mfu if mfu is None else f'{mfu:.1%}'}")
        del model
        torch.cuda.empty_cache()
    return {"device": "cuda", "gpu": gpu, "peak_bf16_flops": peak, "preset": "1b",
            "params": count_parameters(Step1Config.from_preset("1b"))["total"],
            "batch": args.gpu_batch, "seq": args.gpu_seq, "torch": torch.__version__, "results": rows}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1 round of 1 timed step per setting")
    ap.add_argument("--vocab", type=int, default=2048, help="toy vocab (text + audio ids)")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--steps", type=int, default=3, help="timed steps per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    ap.add_argument("--gpu-batch", type=int, default=8)
    ap.add_argument("--gpu-seq", type=int, default=2048)
    args = ap.parse_args()
    if args.quick:
        args.steps, args.rounds = 1, 1
    if args.threads:
        torch.set_num_threads(args.threads)
    RESULTS.mkdir(exist_ok=True)
    print(f"CPU, {torch.get_num_threads()} threads (load average {os.getloadavg()[0]:.1f}), toy preset, "
          f"batch {args.batch} x {args.seq} tokens, AdamW, best of {args.rounds} rounds x {args.steps} steps")
    cpu = bench_cpu(args)
    (RESULTS / "backbone_cpu_toy.json").write_text(json.dumps(cpu, indent=2))
    if torch.cuda.is_available():
        print(f"GPU: {torch.cuda.get_device_name()}, 1b preset, bf16, batch {args.gpu_batch} x {args.gpu_seq}")
        gpu = bench_gpu(args)
        name = gpu["gpu"].replace(" ", "_")
        (RESULTS / f"backbone_gpu_{name}.json").write_text(json.dumps(gpu, indent=2))
    else:
        print("No GPU available (torch.cuda.is_available() is False): the 1b fwd+bwd tokens/s, MFU and "
              "SDPA-vs-flex_attention comparison were not measured.")
    print(f"results in {RESULTS}/")


if __name__ == "__main__":
    main()

"""Measured memory of a training step against the planner, and a real 2-process FSDP run.

The planner (``aqaa_ref.scaling.planner``) predicts bytes; these functions measure them on
the CPU, so notebook 10 and ``benchmarks/bench_scale.py`` compare the two:

* :func:`measure_step_memory` -- peak bytes of the second training step (the first creates
  the AdamW state), tracked per tensor (torch's MemTracker) or as the process's RSS growth;
* :func:`planned_step_memory` -- what the planner says for the same setting;
* :func:`fsdp_parity` -- ``accelerate launch`` the toy entry (``aqaa_ref.scaling.launch``)
  with 2 CPU processes (FSDP2, gloo) and with 1, and compare the loss curves.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

from aqaa_ref.backbone.model import Step1Config, Step1DecoderLayer, Step1ForCausalLM
from aqaa_ref.compat import mem_tracker
from aqaa_ref.scaling.planner import TrainSetup, memory_per_gpu
from aqaa_ref.training.loop import lm_loss

REPO = Path(__file__).resolve().parents[2]


def _vm(field: str) -> int:
    """VmRSS / VmHWM of this process in bytes (Linux /proc)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def build(preset: str, vocab: int, checkpointing: bool, kernel: str = "sdpa", device="cpu", dtype=None):
    cfg = Step1Config.from_preset(preset, vocab_size=vocab, attention_kernel=kernel)
    model = Step1ForCausalLM(cfg).to(device=device, dtype=dtype).train()
    if checkpointing:  # per decoder layer, the wrapper accelerate's fsdp_activation_checkpointing applies
        from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import apply_activation_checkpointing
        apply_activation_checkpointing(model, check_fn=lambda m: isinstance(m, Step1DecoderLayer))
    return cfg, model


def measure_step_memory(preset: str, vocab: int, seq: int, batch: int, checkpointing: bool, method: str) -> dict:
    """Run in a fresh process: peak bytes of the second training step (the first creates the
    AdamW state). ``method`` is "tensors" (MemTracker) or "rss" (VmHWM delta)."""
    torch.set_num_threads(1)
    torch.manual_seed(0)
    if method == "rss":                # page in the code and thread pools first (they are not tensors)
        _train_steps(*build("toy", 64, checkpointing), torch.randint(4, 64, (batch, 16)), 2)
    base = _vm("VmRSS")
    cfg, model = build(preset, vocab, checkpointing)
    ids = torch.randint(4, vocab, (batch, seq))
    out = {}
    if method == "tensors":
        step = _train_steps(cfg, model, ids, 0)
        mt = mem_tracker()
        mt.track_external(model, step.opt)
        with mt:
            step()
            mt.reset_mod_stats()
            step()
        snap = mt.get_tracker_snapshot("peak")[torch.device("cpu")]
        out = {str(k).split(".")[-1].lower(): v for k, v in snap.items()}
        out["peak"] = out.pop("total")
    else:
        _train_steps(cfg, model, ids, 2)
        out["peak"] = _vm("VmHWM") - base
    return out


def _train_steps(cfg, model, ids, n: int):
    """Run ``n`` fp32 training steps (lm_loss, AdamW per-tensor loop, gradients kept); returns
    the step function (with ``.opt``) for more."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    b = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids}

    def step():
        loss, _ = lm_loss(model, b, float(ids.numel()))
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=False)                        # gradient buffers persist

    for _ in range(n):
        step()
    step.opt = opt
    return step


def planned_step_memory(preset: str, vocab: int, seq: int, batch: int, checkpointing: bool) -> dict:
    cfg = Step1Config.from_preset(preset, vocab_size=vocab)
    setup = TrainSetup(seq_len=seq, micro_batch=batch, strategy="ddp", precision="fp32", attention="fused",
                       activation_checkpointing=checkpointing, foreach_optimizer=False)
    plan = memory_per_gpu(cfg, setup, 1)
    return {"peak": plan.peak, "activations": plan.activations, "static": plan.static}



def fsdp_parity(out_dir: Path, steps: int = 24) -> dict:
    """``accelerate launch`` the toy entry with 2 CPU processes (FSDP2, gloo) and run it with 1;
    return both loss curves and their per-step absolute difference."""
    root = REPO
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(root))
    runs = {"fsdp_2proc": [str(Path(sys.executable).parent / "accelerate"), "launch", "--config_file",
                           str(root / "configs/accelerate/fsdp_cpu_2proc.yaml"), "-m", "aqaa_ref.scaling.launch"],
            "single": [sys.executable, "-m", "aqaa_ref.scaling.launch"]}
    curves = {}
    for name, cmd in runs.items():
        t0 = time.perf_counter()
        subprocess.run(cmd + ["--out", str(out_dir / name), "--threads", "1", "--steps", str(steps)],
                       cwd=root, env=env, check=True, capture_output=True, text=True, timeout=600)
        curves[name] = json.loads((out_dir / name / "curve.json").read_text())
        curves[name]["wall_s"] = time.perf_counter() - t0
    diff = [abs(a - b) for a, b in zip(curves["fsdp_2proc"]["losses"], curves["single"]["losses"])]
    print(f"  2-process FSDP vs 1 process, {steps} steps: max |loss diff| {max(diff[:10]):.1e} over the "
          f"first 10 steps, {max(diff):.1e} over all")
    return {"curves": curves, "abs_diff": diff, "max_abs_diff_first10": max(diff[:10]), "max_abs_diff": max(diff),
            "load_average_1min": os.getloadavg()[0]}

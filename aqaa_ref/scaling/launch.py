"""The entry ``accelerate launch`` runs: train the toy preset with the shared loop, save the curve.

    # 1 process (plain python; also what the parity test compares against)
    python -m aqaa_ref.scaling.launch --out runs/toy-1proc
    # 2 CPU processes, gloo, FSDP2 (the CI run)
    accelerate launch --config_file configs/accelerate/fsdp_cpu_2proc.yaml -m aqaa_ref.scaling.launch --out runs/toy-fsdp
    # a GPU node / cluster: the same entry under the other launch files
    accelerate launch --config_file configs/accelerate/fsdp_1node_8gpu.yaml -m aqaa_ref.scaling.launch --out runs/toy-8gpu

The data is a pure function of ``--seed``: sequences of counting patterns (start s, stride
k, ids s, s+k, s+2k, ... modulo the vocab, after a 4-token "prompt" kept out of the loss),
which a small model learns quickly, so the loss curve moves. The model and the batches are
the same in every process count, and ``aqaa_ref.training.loop`` normalises the loss by the global
label count, so the curve of N processes equals the curve of one (up to float summation order).

Writes ``<out>/curve.json`` (rank 0): the loss per step, the distributed type accelerate ran,
and each rank's number of local parameter elements (under FSDP they sum to the model's
total, which shows the parameters were really sharded, not replicated).

On CPU accelerate 1.15 silently runs DDP (``MULTI_CPU``) when a config asks for FSDP: its
FSDP switch is only wired for accelerator devices. :func:`fsdp_on_cpu` turns the state back
to FSDP before ``prepare`` so the FSDP2 code path (``fully_shard`` over gloo) really runs.
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import torch

from aqaa_ref.backbone.model import Step1Config, Step1ForCausalLM
from aqaa_ref.formats.id_layout import IGNORE_INDEX
from aqaa_ref.training.loop import TrainConfig, train

PROMPT = 4  # leading tokens of each example that carry no loss


def toy_examples(n: int, vocab: int, seed: int = 0, min_len: int = 12, max_len: int = 24) -> list[dict]:
    """``n`` counting sequences: ids[t] = (start + stride * t) % (vocab - 4) + 4 (ids 0..3 stay
    special). Lengths vary, so batches carry padding; the first PROMPT labels are IGNORE_INDEX."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        T = int(torch.randint(min_len, max_len + 1, (1,), generator=g))
        start, stride = (int(v) for v in torch.randint(0, vocab - 4, (2,), generator=g))
        stride = stride % 7 + 1
        ids = [(start + stride * t) % (vocab - 4) + 4 for t in range(T)]
        out.append({"input_ids": ids, "labels": [IGNORE_INDEX] * PROMPT + ids[PROMPT:]})
    return out


def toy_model(vocab: int, seed: int = 0, kernel: str = "auto") -> Step1ForCausalLM:
    """The toy preset (d=256, 4 layers, GQA 8/2) with a small vocab; same weights for every seed."""
    torch.manual_seed(seed)
    return Step1ForCausalLM(Step1Config.from_preset("toy", vocab_size=vocab, attention_kernel=kernel))


def fsdp_on_cpu(acc) -> bool:
    """If the launch config asked for FSDP but accelerate fell back to DDP because the
    processes are on CPU, switch the (shared, singleton) accelerate state to FSDP with a
    plugin built from the launcher's FSDP_* environment. Returns True when it switched.

    Both AcceleratorState and PartialState carry ``distributed_type``; AcceleratorState
    re-reads PartialState's copy whenever it is re-instantiated, so both are set."""
    from accelerate import FullyShardedDataParallelPlugin
    from accelerate.utils import DistributedType

    from aqaa_ref.compat import force_fsdp_state

    wants_fsdp = os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true"
    if not (wants_fsdp and acc.distributed_type == DistributedType.MULTI_CPU):
        return False
    force_fsdp_state(acc, FullyShardedDataParallelPlugin())   # reads FSDP_* set by accelerate launch
    return True


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="run folder (checkpoints, curve.json)")
    ap.add_argument("--vocab", type=int, default=64)
    ap.add_argument("--examples", type=int, default=64)
    ap.add_argument("--steps", type=int, default=24)
    ap.add_argument("--batch-size", type=int, default=8, help="global sequences per optimizer step")
    ap.add_argument("--grad-accum", type=int, default=2)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--mixed-precision", default=None, help="override the launcher's (no | bf16)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads per process (1 on a busy CPU)")
    args = ap.parse_args(argv)

    from accelerate import Accelerator

    from aqaa_ref.compat import prepared_model

    if args.threads:
        torch.set_num_threads(args.threads)
    kwargs = {} if args.mixed_precision is None else {"mixed_precision": args.mixed_precision}
    acc = Accelerator(cpu=not torch.cuda.is_available(), **kwargs)
    switched = fsdp_on_cpu(acc)
    cfg = TrainConfig(steps=args.steps, batch_size=args.batch_size, grad_accum=args.grad_accum, lr=args.lr,
                      warmup_steps=2, checkpoint_every=0, progress=False, seed=args.seed,
                      mixed_precision=acc.mixed_precision)
    model = toy_model(args.vocab, args.seed)
    total = sum(p.numel() for p in model.parameters())
    res = train(model, toy_examples(args.examples, args.vocab, args.seed), cfg, args.out, accelerator=acc)

    prepared = prepared_model(acc, model)
    local = sum((p.to_local() if hasattr(p, "to_local") else p).numel() for p in prepared.parameters())
    locals_ = acc.gather(torch.tensor([local], device=acc.device)).tolist()
    curve = {"world": acc.num_processes, "distributed_type": str(acc.distributed_type).split(".")[-1],
             "fsdp_forced_on_cpu": switched,
             "fsdp_version": getattr(getattr(acc.state, "fsdp_plugin", None), "fsdp_version", None),
             "backend": acc.state.backend, "mixed_precision": acc.mixed_precision,
             "params_total": total, "params_local_per_rank": locals_,
             "losses": [m["loss"] for m in res.metrics], "grad_norms": [m["grad_norm"] for m in res.metrics],
             "seconds": res.seconds, "args": vars(args)}
    if acc.is_main_process:
        Path(args.out, "curve.json").write_text(json.dumps(curve, indent=2))
    acc.wait_for_everyone()
    return curve


if __name__ == "__main__":
    main()

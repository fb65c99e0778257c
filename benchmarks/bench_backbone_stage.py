"""One backbone stage trained again with changed settings, against the shipped one (issue 14, item 3).

    .venv/bin/python benchmarks/bench_backbone_stage.py --checkpoints checkpoints/toy --stage sft1 --set sft1.steps=1200
    .venv/bin/python benchmarks/bench_backbone_stage.py --checkpoints checkpoints/toy --stage sft1 --set sft1.lr=3e-3
    .venv/bin/python benchmarks/bench_backbone_stage.py --preset tiny --stage sft1 --set sft1.steps=8   # a dry run

The stage's parents come from the shipped folder (``Assets(recipe, pretrained=...)``), so only
the changed stage trains (cached under ``.cache/runs`` by its key, like every recipe stage).
Both models answer every test question (greedy, format-constrained; memoised on disk); the text
channel's accuracy is printed per test condition and per task family, the shipped stage beside
the variant, with the variant's training seconds. Item 3's target: text channel >= 0.95 on
seen, unseen voice and unseen prosody, >= 0.85 in every family.

Writes ``benchmarks/results/backbone_stage_<preset>_<tag>.json``.
"""
from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).parent / "results"


def accuracy_by(scores, items, key) -> dict:
    """{group: (n, text accuracy)} over items grouped by ``key(item)``, plus "all"."""
    groups: dict = {}
    for s, it in zip(scores, items):
        for g in ("all", key(it)):
            groups.setdefault(g, []).append(s.text_correct)
    return {g: {"n": len(v), "text_accuracy": sum(v) / len(v)} for g, v in groups.items()}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", default="toy")
    ap.add_argument("--checkpoints", default=None, metavar="DIR", help="a shipped folder (default: the recipe's cache)")
    ap.add_argument("--stage", default="sft1", choices=("pretrain", "sft1", "sft2", "dpo"))
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a Recipe field (dotted)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tag", default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    from dataclasses import fields

    from aqaa_ref.cache import atomic_write_json
    from aqaa_ref.inference.generation import score_memoised
    from aqaa_ref.overrides import apply_overrides
    from aqaa_ref.training.recipe import Assets, Recipe, ensure_stage

    base = Assets(Recipe.from_preset(args.preset), pretrained=args.checkpoints)
    changed = apply_overrides(base.recipe, args.set)
    changes = {f.name: getattr(changed, f.name) for f in fields(changed)
               if getattr(changed, f.name) != getattr(base.recipe, f.name)}
    variant = base.variant(**changes)
    if variant.recipe.stage_key(args.stage) == base.recipe.stage_key(args.stage):
        raise SystemExit(f"--set {' '.join(args.set) or '(nothing)'} does not change stage {args.stage!r}")

    t0 = time.perf_counter()
    ensure_stage(args.stage, base)            # nothing to do when the folder ships it
    info = ensure_stage(args.stage, variant)
    print(f"stage {args.stage} with {', '.join(args.set)}: ready in {time.perf_counter() - t0:.0f} s "
          f"(trained in {info.get('seconds', float('nan')):.0f} s)", flush=True)

    items = base.corpus.split("test")
    out = dict(preset=args.preset, checkpoints=args.checkpoints, stage=args.stage, overrides=args.set,
               train_seconds=info.get("seconds"), final_loss=info.get("final_loss"), threads=args.threads)
    t0 = time.perf_counter()
    for name, assets in (("shipped", base), ("variant", variant)):
        scores = score_memoised(assets.load_stage(args.stage), assets.builder, items)
        out[name] = {"condition": accuracy_by(scores, items, lambda it: it.condition),
                     "family": accuracy_by(scores, items, lambda it: it.family)}
    out["answer_seconds"] = time.perf_counter() - t0
    print(f"\ntext channel right, stage {args.stage}: {'shipped' if args.checkpoints else 'recipe'} -> "
          f"{', '.join(args.set)}")
    for by in ("condition", "family"):
        for g, s in out["shipped"][by].items():
            if by == "family" and g == "all":
                continue
            v = out["variant"][by][g]
            print(f"  {g:<28} n={s['n']:<4} {s['text_accuracy']:.3f} -> {v['text_accuracy']:.3f}")
    out["load_average"] = os.getloadavg()[0]
    print(f"answered in {out['answer_seconds']:.0f} s on {args.threads} threads (load average "
          f"{out['load_average']:.1f}, {platform.processor() or platform.machine()})")
    tag = args.tag or "-".join(s.replace("=", "") for s in args.set)
    atomic_write_json(RESULTS / f"backbone_stage_{args.preset}_{tag}.json", out)
    return out


if __name__ == "__main__":
    main()

"""The whole toy pipeline's training time from an empty cache, stage by stage (issue 14, item 6).

    .venv/bin/python benchmarks/bench_pipeline_time.py                  # toy, a fresh temporary cache
    .venv/bin/python benchmarks/bench_pipeline_time.py --preset tiny    # seconds: a dry run
    .venv/bin/python benchmarks/bench_pipeline_time.py --cache DIR      # keep what it trains in DIR

Runs every step ``./run.sh demo`` runs before its first answer, in order, each timed on its
own (``aqaa_ref.training.train_all``): synthesise the corpus, train the dual tokenizer,
tokenize the corpus and train the text BPE, the five backbone stages and, in a worker process
beside them (one thread per chain; ``--sequential`` to compare), the flow vocoder, the
mel-to-wave model and the judges. Each piece's seconds are printed as it ends; with the two
chains side by side the total is the wall time, not the sum. The
cache must start empty (a warm cache would time nothing); the target is <= 20 min on an idle
2-core machine. Prints the load average before and after: the cores must be otherwise idle
for the number to mean anything. Writes ``benchmarks/results/pipeline_time_<preset>.json``.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", default="toy")
    ap.add_argument("--cache", type=Path, default=None, help="an empty folder (default: a new temporary one)")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--sequential", action="store_true",
                    help="one chain after the other on all threads (default: the vocoder chain beside the backbone)")
    args = ap.parse_args(argv)
    cache = args.cache or Path(tempfile.mkdtemp(prefix="aqaa-pipeline-"))
    if cache.exists() and any(cache.iterdir()):
        sys.exit(f"error: --cache {cache} is not empty: a warm cache would time nothing")
    os.environ["AQAA_CACHE"] = str(cache)        # before aqaa_ref reads it

    from aqaa_ref.cache import atomic_write_json
    from aqaa_ref.training.recipe import Recipe
    from aqaa_ref.provenance import git_commit, machine
    from aqaa_ref.training.train_all import train_all

    code = git_commit()                          # the code that trains (read before training starts)
    load_before = os.getloadavg()[0]
    recipe = Recipe.from_preset(args.preset)
    seconds = train_all(recipe, judges_preset=args.preset, concurrent=not args.sequential,
                        on_stage=lambda name, s: print(f"[{name}] {s:.1f} s", flush=True))
    total = seconds.pop("total")
    load_after = os.getloadavg()[0]
    print(f"\ntotal {total:.0f} s = {total / 60:.1f} min ({args.preset} preset, cache {cache}); "
          f"load average {load_before:.1f} before, {load_after:.1f} after; {os.cpu_count()} cores, "
          f"{platform.processor() or platform.machine()}")
    out = dict(preset=args.preset, concurrent=not args.sequential, seconds=seconds, total_seconds=total,
               load_average=[load_before, load_after], cores=os.cpu_count(), code=code, machine=machine())
    atomic_write_json(args.json or RESULTS / f"pipeline_time_{args.preset}.json", out)
    return out


if __name__ == "__main__":
    main()

"""The paper's ablations at toy scale: run (or read back from the cache) and record them.

    .venv/bin/python benchmarks/bench_ablations.py all        # or: format concat codebook dpo merge

Each ablation trains its variants once (cached under .cache/ablations/), prints its table
beside the paper's numbers, and its rows are copied to benchmarks/results/ablation_<name>_toy.json.
"""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from aqaa_ref.evaluation.ablations import ABLATIONS, result_path, run_ablation

RESULTS = Path(__file__).parent / "results"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("name", choices=(*ABLATIONS, "all"))
    ap.add_argument("--limit", type=int, default=None, help="score this many strided test questions")
    args = ap.parse_args()
    run_ablation(args.name, "toy", args.limit)
    RESULTS.mkdir(parents=True, exist_ok=True)
    for name in ABLATIONS if args.name == "all" else (args.name,):
        shutil.copyfile(result_path(name, "toy"), RESULTS / f"ablation_{name}_toy.json")
        print(f"wrote {RESULTS / f'ablation_{name}_toy.json'}")


if __name__ == "__main__":
    main()

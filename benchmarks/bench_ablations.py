"""The paper's ablations at toy scale: run (or read back from the cache) and record them.

    .venv/bin/python benchmarks/bench_ablations.py all                 # or: format concat codebook dpo merge
    .venv/bin/python benchmarks/bench_ablations.py concat dpo --seeds 3

Each ablation trains its variants once per seed (cached under .cache/ablations/), from the
shipped stages in checkpoints/toy (``--train``: from the recipe's own cached stages), prints its
table with 95 % bootstrap intervals and the paper's claims checked against them, and its rows
are copied to benchmarks/results/ablation_<name>_toy.json.
"""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from aqaa_ref.checkpoints import default_folder, is_shipped
from aqaa_ref.evaluation.ablations import ABLATIONS, result_path, run_ablation

RESULTS = Path(__file__).parent / "results"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="+", choices=(*ABLATIONS, "all"))
    ap.add_argument("--limit", type=int, default=None, help="score this many strided test questions")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--train", action="store_true", help="start from the recipe's cached stages, not the shipped ones")
    args = ap.parse_args()
    folder = None if args.train else default_folder("toy")
    folder = folder if folder is not None and is_shipped(folder) else None
    names = ABLATIONS if "all" in args.names else args.names
    RESULTS.mkdir(parents=True, exist_ok=True)
    for name in names:
        run_ablation(name, "toy", args.limit, seeds=args.seeds, checkpoints=folder)
        shutil.copyfile(result_path(name, "toy"), RESULTS / f"ablation_{name}_toy.json")
        print(f"wrote {RESULTS / f'ablation_{name}_toy.json'}")


if __name__ == "__main__":
    main()

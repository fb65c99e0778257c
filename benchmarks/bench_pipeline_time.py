"""The whole toy pipeline's training time from an empty cache, stage by stage (issue 14, item 6).

    .venv/bin/python benchmarks/bench_pipeline_time.py                  # toy, a fresh temporary cache
    .venv/bin/python benchmarks/bench_pipeline_time.py --preset tiny    # seconds: a dry run
    .venv/bin/python benchmarks/bench_pipeline_time.py --cache DIR      # keep what it trains in DIR

Runs every step ``./run.sh demo`` runs before its first answer, in order, each timed on its
own: synthesise the corpus, train the dual tokenizer, tokenize the corpus and train the text
BPE, the five backbone stages, the flow vocoder, the mel-to-wave model and the judges. The
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
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", default="toy")
    ap.add_argument("--cache", type=Path, default=None, help="an empty folder (default: a new temporary one)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    cache = args.cache or Path(tempfile.mkdtemp(prefix="aqaa-pipeline-"))
    if cache.exists() and any(cache.iterdir()):
        sys.exit(f"error: --cache {cache} is not empty: a warm cache would time nothing")
    os.environ["AQAA_CACHE"] = str(cache)        # before aqaa_ref reads it

    from aqaa_ref.cache import atomic_write_json
    from aqaa_ref.data import build_corpus
    from aqaa_ref.evaluation.judges import Judges
    from aqaa_ref.tokenizer import load_or_train_dual
    from aqaa_ref.training.recipe import STAGES, Assets, Recipe, run_stage
    from aqaa_ref.vocoder import load_or_train_mel2wav, load_or_train_vocoder

    load_before = os.getloadavg()[0]
    recipe = Recipe.from_preset(args.preset)
    seconds: dict[str, float] = {}

    def timed(name, fn):
        t0 = time.perf_counter()
        out = fn()
        seconds[name] = time.perf_counter() - t0
        print(f"[{name}] {seconds[name]:.1f} s", flush=True)
        return out

    corpus = timed("corpus", lambda: build_corpus(recipe.corpus))
    timed("tokenizer", lambda: load_or_train_dual(corpus, recipe.tokenizer))
    assets = timed("tokenize + text BPE", lambda: Assets(recipe))
    for stage in STAGES:
        timed(stage, lambda: run_stage(stage, assets))
    timed("flow vocoder", lambda: load_or_train_vocoder(assets.corpus, assets.dual, recipe.vocoder))
    timed("mel-to-wave", lambda: load_or_train_mel2wav(assets.corpus, recipe.mel2wav))
    timed("judges", lambda: Judges.load_or_train(assets.corpus, args.preset))
    total = sum(seconds.values())
    load_after = os.getloadavg()[0]
    print(f"\ntotal {total:.0f} s = {total / 60:.1f} min ({args.preset} preset, cache {cache}); "
          f"load average {load_before:.1f} before, {load_after:.1f} after; {os.cpu_count()} cores, "
          f"{platform.processor() or platform.machine()}")
    out = dict(preset=args.preset, seconds=seconds, total_seconds=total, load_average=[load_before, load_after],
               cores=os.cpu_count())
    atomic_write_json(args.json or RESULTS / f"pipeline_time_{args.preset}.json", out)
    return out


if __name__ == "__main__":
    main()

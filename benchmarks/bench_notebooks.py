"""Every notebook's run time in full mode, warm and cold (issue 17: each notebook states both).

    .venv/bin/python benchmarks/bench_notebooks.py                     # all eleven, cold then warm
    .venv/bin/python benchmarks/bench_notebooks.py 04 05 --warm-only   # some, warm only
    .venv/bin/python benchmarks/bench_notebooks.py 00 03 --cold-only   # some, cold only (keeps the warm times)
    .venv/bin/python benchmarks/bench_notebooks.py --in-place --fill   # keep the warm outputs, write the times

Cold: the notebook executed with ``AQAA_CACHE`` pointing at a new empty folder, so it pays for
everything it needs that is not shipped in ``checkpoints/`` (synthesising the toy corpus,
tokenizing it, training what it trains); that execution's outputs are discarded. Warm:
executed on the repository's cache (``.cache/`` or ``$AQAA_CACHE``), as a learner's second run
is; training is not bitwise reproducible across runs (thread scheduling), so the committed
outputs come from the warm run on the cache the notebooks' prose was checked against. Each
execution is a fresh kernel (``jupyter nbconvert --execute``); full mode (``AQAA_QUICK``
unset). ``--in-place`` writes the warm execution's outputs into the repository's ``.ipynb``;
``--fill`` rewrites the header's ``**Run time** ...: warm X, cold Y`` of each ``.py`` twin and
its ``.ipynb`` with the measured times. Prints the 1-minute load average before each run and after the last: the
cores must be otherwise idle for the seconds to mean anything. Writes
``benchmarks/results/notebook_times.json`` (merged with earlier runs of other notebooks).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
RESULTS = Path(__file__).parent / "results"
RUN_TIME = re.compile(r"(warm )(RUNTIME_WARM|[^,]+?)(, cold )(RUNTIME_COLD|[^(.\n]+?)( \(| ?\.|\n)")


def human(seconds: float) -> str:
    """82 -> 'about 1 min 20 s'; 40 -> 'about 40 s' (rounded to 10 s: run times are noisy)."""
    if seconds < 10:
        return "under 10 s"
    s = int(round(seconds / 10.0)) * 10
    return f"about {s // 60} min {s % 60} s".replace(" 0 s", "") if s >= 60 else f"about {s} s"


def execute(ipynb: Path, out: Path, cache: Path) -> float:
    env = {k: v for k, v in os.environ.items() if k != "AQAA_QUICK"}
    env["AQAA_CACHE"] = str(cache)
    t0 = time.perf_counter()
    run = subprocess.run([str(Path(sys.executable).parent / "jupyter"), "nbconvert", "--to", "notebook", "--execute",
                          "--ExecutePreprocessor.timeout=3600", "--output", str(out), str(ipynb)],
                         cwd=NOTEBOOKS, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if run.returncode:
        sys.exit(f"{ipynb.name} failed:\n{run.stderr[-3000:]}")
    return seconds


def fill(stem: str, warm: float, cold: float) -> bool:
    """Write the measured times into the header of ``stem``'s .py twin and its .ipynb."""
    changed = False
    for path in (NOTEBOOKS / f"{stem}.py", NOTEBOOKS / f"{stem}.ipynb"):
        text = path.read_text()
        new = RUN_TIME.sub(lambda m: f"{m[1]}{human(warm)}{m[3]}{human(cold)}{m[5]}", text, count=1)
        if new != text:
            path.write_text(new)
            changed = True
    return changed


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("numbers", nargs="*", help="notebook numbers (default: all)")
    ap.add_argument("--warm-only", action="store_true", help="skip the cold run")
    ap.add_argument("--cold-only", action="store_true", help="skip the warm run (keeps an earlier warm time)")
    ap.add_argument("--in-place", action="store_true", help="keep the warm outputs in the repository's .ipynb")
    ap.add_argument("--fill", action="store_true", help="write the times into each notebook's header")
    args = ap.parse_args(argv)
    if args.warm_only and args.cold_only:
        ap.error("--warm-only and --cold-only together leave nothing to run")

    from aqaa_ref.cache import atomic_write_json, cache_dir
    from aqaa_ref.course import LESSONS, lesson

    chosen = [lesson(int(n)) for n in args.numbers] if args.numbers else list(LESSONS)
    path = RESULTS / "notebook_times.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    with tempfile.TemporaryDirectory(prefix="aqaa-notebooks-") as tmp:
        for les in chosen:
            ipynb = NOTEBOOKS / les.file
            row = {}
            if not args.warm_only:
                cold = Path(tmp) / f"cache-{les.number:02d}"
                cold.mkdir()
                row["cold_load"] = round(os.getloadavg()[0], 2)
                row["cold_s"] = round(execute(ipynb, Path(tmp) / f"cold-{les.file}", cold), 1)
                shutil.rmtree(cold)
            if not args.cold_only:
                out = Path(tmp) / f"warm-{les.file}"
                row["warm_load"] = round(os.getloadavg()[0], 2)
                row["warm_s"] = round(execute(ipynb, out, cache_dir()), 1)
                if args.in_place:
                    shutil.copyfile(out, ipynb)
            results[les.stem] = {**results.get(les.stem, {}), **row}
            print(f"{les.stem:<42} cold {row.get('cold_s', float('nan')):7.1f} s   "
                  f"warm {row.get('warm_s', float('nan')):7.1f} s   "
                  f"(1-min load before: {', '.join(f'{k[:4]} {v:.2f}' for k, v in row.items() if k.endswith('load'))}, "
                  f"after: {os.getloadavg()[0]:.2f})", flush=True)
            if args.fill and {"cold_s", "warm_s"} <= results[les.stem].keys():
                fill(les.stem, results[les.stem]["warm_s"], results[les.stem]["cold_s"])
            atomic_write_json(path, results)
    return results


if __name__ == "__main__":
    main()

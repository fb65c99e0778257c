"""The shipped checkpoints, measured (issue 16): sizes, the demo's times and scores, the full evaluation.

    .venv/bin/python benchmarks/bench_shipped.py                        # checkpoints/toy
    .venv/bin/python benchmarks/bench_shipped.py --eval                 # also the 324-item evaluation
    .venv/bin/python benchmarks/bench_shipped.py --record               # also write the scores into provenance.json

Runs ``python -m aqaa_ref demo`` as a new user would (a fresh process: imports, loading and
answering all counted) and reads from its output the seconds from the command's start to the
first answer on disk and in all; target: the first answer in under 60 s on the 2-core machine.
Writes ``benchmarks/results/shipped_<preset>.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).parent / "results"


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", default="toy")
    ap.add_argument("--eval", action="store_true", help="also run the evaluation on the whole test split")
    ap.add_argument("--record", action="store_true", help="write the measured scores into provenance.json")
    args = ap.parse_args(argv)

    from aqaa_ref.cache import atomic_write_json
    from aqaa_ref.checkpoints import default_folder, folder_sizes

    folder = default_folder(args.preset)
    out: dict = {"preset": args.preset, "sizes_mb": {k: round(v / 1e6, 2) for k, v in folder_sizes(folder).items()}}
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        run = subprocess.run([sys.executable, "-m", "aqaa_ref", "demo", "--preset", args.preset, "--out", tmp],
                             cwd=ROOT, capture_output=True, text=True)
        wall = time.perf_counter() - t0
    if run.returncode:
        sys.exit(f"demo failed:\n{run.stderr[-2000:]}")
    text = run.stdout
    m = re.search(r"text channel correct: (\d+)/(\d+)(?: \| .*?: (\d+)/\d+)?", text)
    first = re.search(r"first answer on disk ([\d.]+) s", text)
    out["demo"] = dict(text_ok=int(m.group(1)), n=int(m.group(2)), heard=int(m.group(3)) if m.group(3) else None,
                       first_answer_s=float(first.group(1)), wall_s=round(wall, 1), load_average_before=load)
    print(text)
    print(f"demo: text {out['demo']['text_ok']}/{out['demo']['n']}, heard {out['demo']['heard']}/{out['demo']['n']}; "
          f"first answer on disk {out['demo']['first_answer_s']:.1f} s after the command started, all {wall:.1f} s "
          f"(load average {load:.1f} before)")
    if args.eval:
        with tempfile.TemporaryDirectory() as tmp:
            js = Path(tmp) / "eval.json"
            t0 = time.perf_counter()
            ev = subprocess.run([sys.executable, "-m", "aqaa_ref", "eval", "--preset", args.preset, "--json", str(js),
                                 "--quiet"], cwd=ROOT, capture_output=True, text=True)
            if ev.returncode:
                sys.exit(f"eval failed:\n{ev.stderr[-2000:]}")
            print(ev.stdout)
            res = json.loads(js.read_text())
            out["eval"] = {k: res[k] for k in ("by_condition", "by_family") if k in res} or res
            out["eval_seconds"] = round(time.perf_counter() - t0, 1)
    for k, v in out["sizes_mb"].items():
        print(f"  {k:<24} {v:7.2f} MB")
    atomic_write_json(RESULTS / f"shipped_{args.preset}.json", out)
    if args.record:
        prov_path = folder / "provenance.json"
        prov = json.loads(prov_path.read_text())
        prov["scores"] = {k: out[k] for k in ("demo", "eval") if k in out}
        atomic_write_json(prov_path, prov)
        print(f"recorded the scores in {prov_path.relative_to(ROOT)}")
    return out


if __name__ == "__main__":
    main()

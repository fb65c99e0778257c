"""Does storing a shipped component in int8 change a measured score? (issue 16's 40 MB budget)

    .venv/bin/python benchmarks/bench_storage.py                    # all 324 test questions
    .venv/bin/python benchmarks/bench_storage.py --limit 24         # a dry run

The shipped folder stores every weight in float16. Storing a component's weight matrices in
int8 instead (``checkpoints.write_safetensors(int8=True)``: one scale per output row) saves
about half its bytes, but it is only free if no measured score moves. This measures it: each
variant is a copy of the shipped folder with one or more components re-stored in int8 (from
their float16 weights), loaded back with ``AQAA.from_pretrained`` and ``load_judges`` like any
folder, and run through the evaluation (all test questions answered in speech, judged from
the audio). Every answer's verdicts are compared with the float16 folder's.

The yardstick: the float16 folder itself with the flow vocoder's starting noise drawn from
other seeds. The answers' tokens are the same (greedy decoding); only the noise differs, which
is a change nobody would call a different model. A storage variant whose score differences
stay within the reseeded folder's is as unchanged as a measurement on 324 answers can tell;
one that moves further is a measured change.

``--paired`` also runs every int8 variant at each of the yardstick's seeds, so int8 and
float16 are compared at the same noise (the paired differences), not only at seed 0.

The toy folder ships its flow vocoder in int8 since this measurement (the float16 flow it was
made from is in git history, commit 0e8f20f); a component the folder already stores in int8 is
left out of the variants (there is no float16 copy to compare it with).

Writes ``benchmarks/results/storage_<preset>.json``.
"""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path


RESULTS = Path(__file__).parent / "results"


class Reseeded:
    """A :class:`~aqaa_ref.vocoder.Vocoder` whose ``decode`` draws its starting noise from ``seed``."""

    def __init__(self, vocoder, seed: int):
        self.inner, self.seed = vocoder, seed

    def decode(self, codes, **kw):
        return self.inner.decode(codes, seed=self.seed, **kw)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def variant_folder(src: Path, dst: Path, int8: tuple[str, ...]) -> Path:
    """A copy of ``src`` with the ``int8`` components' weight matrices re-stored in int8."""
    from aqaa_ref.checkpoints import store_int8

    shutil.copytree(src, dst)
    store_int8(dst, int8)
    return dst


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", default="toy")
    ap.add_argument("--limit", type=int, default=None, help="a strided subset of the test split")
    ap.add_argument("--seeds", type=int, nargs="*", default=[1, 2], help="the yardstick's noise seeds")
    ap.add_argument("--only", nargs="*", default=None, metavar="N",
                    help="run only these variants, by number (0 = shipped, then the seeds, then the int8 ones)")
    ap.add_argument("--paired", action="store_true", help="also run each int8 variant at every yardstick seed")
    args = ap.parse_args(argv)

    from aqaa_ref.cache import atomic_write_json
    from aqaa_ref.checkpoints import default_folder, folder_sizes, layout, load_judges
    from aqaa_ref.data import build_corpus, strided
    from aqaa_ref.evaluation.scoring import RATES, answer_records, evaluate, style_contrasts
    from aqaa_ref.inference.pipeline import AQAA
    from aqaa_ref.training.recipe import Recipe
    from aqaa_ref.training.sequences import tokenize_corpus

    shipped = default_folder(args.preset)
    recipe = Recipe.from_preset(args.preset)
    load = os.getloadavg()[0]
    already = set(layout(shipped).get("int8", []))
    candidates = [("int8 flow", ("vocoder/flow",)), ("int8 mel2wav + recognizer", ("vocoder/mel2wav", "judges/recognizer")),
                  ("int8 flow + mel2wav + recognizer", ("vocoder/flow", "vocoder/mel2wav", "judges/recognizer"))]
    candidates = [(n, c) for n, c in candidates if not set(c) <= already]
    variants = [("as shipped", (), 0)] + [(f"as shipped, noise seed {s}", (), s) for s in args.seeds] + [
        (n, c, 0) for n, c in candidates]
    if args.only is not None:
        variants = [v for i, v in enumerate(variants) if str(i) in args.only or i == 0]
    if args.paired:
        variants += [(f"{n}, noise seed {s}", c, s) for n, c, _ in variants if c for s in args.seeds]
    out: dict = {"preset": args.preset, "load_average_before": load, "variants": {}}
    base = None
    with tempfile.TemporaryDirectory() as tmp:
        corpus = table = items = None
        for name, int8, seed in variants:
            t0 = time.perf_counter()
            folder = variant_folder(shipped, Path(tmp) / f"v{len(out['variants'])}", int8) if int8 else shipped
            aqaa = AQAA.from_pretrained(folder)
            if seed:
                aqaa.vocoder = Reseeded(aqaa.vocoder, seed)
            if corpus is None:
                corpus = build_corpus(recipe.corpus, progress=False)
                table = tokenize_corpus(corpus, aqaa.dual, progress=False)
                items = strided(corpus.split("test"), args.limit)
            res = evaluate(answer_records(aqaa, items, table), load_judges(folder), corpus)
            scores = res.scores
            row = {"int8": list(int8), "seed": seed, "mb": round(folder_sizes(folder)["total"] / 1e6, 2),
                   "n": len(scores), "seconds": round(time.perf_counter() - t0, 1),
                   **{d: sum(s[d] for s in scores) / len(scores) for d in RATES},
                   **{k: v for k, v in style_contrasts(res).items() if k != "counts"}}
            if base is None:
                base = scores
            row["verdicts_changed"] = {d: sum(a[d] != b[d] for a, b in zip(scores, base)) for d in RATES}
            out["variants"][name] = row
            print(f"{name:<34} {row['mb']:6.2f} MB  " + "  ".join(f"{d} {row[d]:.3f}" for d in RATES)
                  + f"  high/low {row['high_over_low']:.2f}  slow/fast {row['slow_over_fast']:.2f}"
                  + f"  changed verdicts {row['verdicts_changed']}  ({row['seconds']:.0f} s)", flush=True)
    yard = [r for r in out["variants"].values() if r["seed"] and not r["int8"]]
    if yard:
        print("\nper dimension: the yardstick's largest |difference| from the shipped folder (noise reseeded), "
              "and each int8 variant's")
        for d in RATES:
            ref = out["variants"]["as shipped"][d]
            noise = max(abs(r[d] - ref) for r in yard)
            cells = "  ".join(f"{n}: {r[d] - ref:+.3f}" for n, r in out["variants"].items() if r["int8"] and not r["seed"])
            print(f"  {d:<12} noise +-{noise:.3f}   {cells}")
    paired = {n: r for n, r in out["variants"].items() if r["int8"] and r["seed"]}
    if paired:
        print("\npaired: each int8 variant minus the float16 folder at the same noise seed")
        base_at = {r["seed"]: r for r in out["variants"].values() if not r["int8"]}
        for n, r in paired.items():
            print(f"  {n:<34} " + "  ".join(f"{d} {r[d] - base_at[r['seed']][d]:+.3f}" for d in RATES))
    out["load_average_after"] = os.getloadavg()[0]
    atomic_write_json(RESULTS / f"storage_{args.preset}.json", out)
    return out


if __name__ == "__main__":
    main()

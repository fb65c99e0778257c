"""Where the spoken answers are lost (issue 14, item 1): every test answer followed down the chain.

    .venv/bin/python benchmarks/bench_waterfall.py                       # toy models, all 324 test items
    .venv/bin/python benchmarks/bench_waterfall.py --limit 84            # a strided subset
    .venv/bin/python benchmarks/bench_waterfall.py --preset tiny --limit 8   # seconds: a dry run

Prints the waterfall (``aqaa_ref.evaluation.waterfall``) by condition and by family: the
fraction of answers understood (text channel right), of those whose audio tokens also say it
(read back by the tokenizer's CTC head), and of those also heard right by the recognizer after
vocoding; beside them the ceilings on the reference: its tokens read back, its tokens vocoded
(the vocoder's ceiling), copy synthesis (its mel through the mel-to-wave model) and its audio.
Writes the rows and both tables to ``--json`` (default ``benchmarks/results/waterfall_<preset>.json``).
"""
from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import torch

from aqaa_ref.cache import atomic_write_json
from aqaa_ref.data import strided
from aqaa_ref.evaluation.judges import Judges
from aqaa_ref.evaluation.scoring import answer_records
from aqaa_ref.evaluation.waterfall import summarize, waterfall, waterfall_table
from aqaa_ref.inference.pipeline import AQAA
from aqaa_ref.training.recipe import Assets, Recipe

RESULTS = Path(__file__).parent / "results"


def vocoder_fit(aqaa, assets, judges, n: int, temperatures=(0.6, 0.3)) -> dict:
    """The vocoder's ceiling on clips it trained on vs held-out ones: n English items of each
    split (evenly strided), their reference tokens vocoded at each noise temperature, judged.
    A large gap says the vocoder needs more (and more varied) speech, not only more steps."""
    from aqaa_ref.evaluation.scoring import AnswerRecord, judge_answer
    from aqaa_ref.vocoder import to_vocoder_codes

    out = {}
    for split in ("train", "test"):
        items = strided([it for it in assets.corpus.split(split) if it.language == "en"], n)
        for T in temperatures:
            scores = []
            for it in items:
                ids = [t for r in it.answer_audio for t in assets.table.ids(r.path)]
                wav = aqaa.vocoder.decode(to_vocoder_codes(ids, aqaa.vocab), temperature=T)
                scores.append(judge_answer(AnswerRecord(it, wav.float()), judges, assets.corpus))
            out[f"{split} T={T}"] = {k: sum(s[k] for s in scores) / max(1, len(scores))
                                     for k in ("correct", "f0_ok", "voice_ok")} | {"n": len(items)}
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", default="toy")
    ap.add_argument("--stage", default="merge", help="which backbone checkpoint answers")
    ap.add_argument("--limit", type=int, default=None, help="a strided subset of the test split")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--fit", type=int, default=0, metavar="N",
                    help="also: the vocoder's ceiling on N training vs N test items (English)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    assets = Assets(Recipe.from_preset(args.preset))
    aqaa = AQAA.from_recipe(assets.recipe, stage=args.stage, assets=assets)
    judges = Judges.load_or_train(assets.corpus, args.preset)
    items = assets.corpus.split("test")
    items = strided(items, args.limit) if args.limit else items
    t0 = time.perf_counter()
    records = answer_records(aqaa, items, assets.table)
    rows = waterfall(aqaa, records, assets.table, judges, assets.corpus, progress=True)
    seconds = time.perf_counter() - t0
    for by in ("condition", "family"):
        print(f"\nwaterfall by {by} ({len(items)} test items, stage {args.stage}; stages cumulative):")
        print(waterfall_table(rows, by))
    fit = vocoder_fit(aqaa, assets, judges, args.fit) if args.fit else None
    if fit:
        print("\nthe vocoder's ceiling (reference tokens vocoded, heard right / pitch within 10 % / voice recognised):")
        for k, v in fit.items():
            print(f"  {k:<12} n={v['n']:<4} correct {v['correct']:.3f}  f0_ok {v['f0_ok']:.3f}  voice_ok {v['voice_ok']:.3f}")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\n{seconds:.0f} s on {args.threads} threads (load average {load:.1f}, {platform.processor() or 'cpu'})")
    out = dict(preset=args.preset, stage=args.stage, n=len(items), seconds=seconds, load_average=load,
               by_condition=summarize(rows, "condition"), by_family=summarize(rows, "family"), vocoder_fit=fit, rows=rows)
    atomic_write_json(args.json or RESULTS / f"waterfall_{args.preset}.json", out)
    return out


if __name__ == "__main__":
    main()

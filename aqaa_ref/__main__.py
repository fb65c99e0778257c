"""Command line: ``python -m aqaa_ref <command>``.

    demo                 build the toy corpus (cached) and show what it made
    train                run the toy post-training path (pre-train, SFT-1, SFT-2, DPO, merge)
                         and score held-out questions after each stage:  --preset tiny|toy
    data build           build a corpus:  --preset tiny|toy|large  [--seed N]
    data samples         regenerate data_samples/ (the shipped example questions)

Errors in the user's input end with a one-line message and exit code 2, not a traceback.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _cmd_data_build(args) -> int:
    from .data import CorpusConfig, build_corpus

    cfg = CorpusConfig.from_preset(args.preset, seed=args.seed, workers=args.workers)
    t0 = time.perf_counter()
    corpus = build_corpus(cfg)
    print(f"{corpus} ready in {time.perf_counter() - t0:.1f} s")
    _print_stats(corpus.stats())
    return 0


def _print_stats(stats: dict) -> None:
    print(f"  items: {stats['items']}  clips: {stats['clips']}  audio: {stats['audio_hours']:.2f} h")
    print(f"  splits: {stats['by_split']}")
    print(f"  test conditions: {stats['test_by_condition']}")
    print(f"  languages: {stats['by_language']}")
    print("  training items per family:")
    for fam, n in stats["train_by_family"].items():
        print(f"    {fam:<28} {n:>5}")
    print(f"  multi-segment answers: {stats['multi_segment']}  text instructions: {stats['text_instruction']}")


def _cmd_data_samples(args) -> int:
    from .samples import write_samples

    out = write_samples(Path(args.out))
    print(f"wrote {out}")
    return 0


def _cmd_demo(args) -> int:
    from .data import CorpusConfig, build_corpus
    from .samples import load_samples

    t0 = time.perf_counter()
    print("[1/2] building the toy corpus (cached after the first run) ...")
    corpus = build_corpus(CorpusConfig.from_preset(args.preset))
    print(f"      {corpus} in {time.perf_counter() - t0:.1f} s")
    _print_stats(corpus.stats())
    print("[2/2] the shipped example questions (data_samples/):")
    for s in load_samples():
        print(f"      {s['file']:<34} {s['family']:<28} {s['question']!r} -> {s['answer']!r} ({s['answer_style']})")
    print("\nListen to them in notebooks/00_data_engine.ipynb (./run.sh lab).")
    print("The spoken-answer demo arrives with the later stages (tokenizer, backbone, vocoder).")
    return 0


def _cmd_train(args) -> int:
    from .recipe import Assets, Recipe, evaluate_stages, run_recipe

    recipe = Recipe.from_preset(args.preset)
    t0 = time.perf_counter()
    assets = Assets(recipe)
    print(f"corpus, tokenizers and audio codes ready in {time.perf_counter() - t0:.1f} s")
    res = run_recipe(recipe, assets=assets)
    print(f"\n{'stage':<9} {'examples':>8} {'final loss':>10} {'seconds':>8}")
    for stage, info in res.items():
        print(f"{stage:<9} {info.get('examples', '-'):>8} {info.get('final_loss', float('nan')):>10.3f} {info['seconds']:>8.1f}")
    if args.eval:
        scores = evaluate_stages(assets, limit=args.limit)
        print(f"\nheld-out test questions ({args.limit or 'all'}): text accuracy / audio-token accuracy")
        conds = [c for c in next(iter(scores.values())) if c != "all"]
        print(f"{'stage':<9} {'all':>13} " + " ".join(f"{c:>15}" for c in conds))
        for stage, r in scores.items():
            cell = lambda d: f"{d['text_accuracy']:.2f}/{d['audio_token_accuracy']:.2f}"  # noqa: E731
            print(f"{stage:<9} {cell(r['all']):>13} " + " ".join(f"{cell(r[c]):>15}" for c in conds))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m aqaa_ref", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="build the toy corpus and show it")
    demo.add_argument("--preset", default="toy")
    demo.set_defaults(func=_cmd_demo)
    tr = sub.add_parser("train", help="run the post-training path and score each stage")
    tr.add_argument("--preset", default="toy", choices=["tiny", "toy"])
    tr.add_argument("--no-eval", dest="eval", action="store_false")
    tr.add_argument("--limit", type=int, default=None, help="score only the first N test questions")
    tr.set_defaults(func=_cmd_train)
    data = sub.add_parser("data", help="corpus tools").add_subparsers(dest="data_command", required=True)
    b = data.add_parser("build", help="build (or reuse) a corpus")
    b.add_argument("--preset", default="toy", choices=["tiny", "toy", "large"])
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--workers", type=int, default=2)
    b.set_defaults(func=_cmd_data_build)
    s = data.add_parser("samples", help="regenerate the shipped example questions")
    s.add_argument("--out", default=str(REPO / "data_samples"))
    s.set_defaults(func=_cmd_data_samples)
    return p


def main(argv=None) -> int:
    from .audio import AudioError
    from .data.espeak import SynthesisError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (AudioError, SynthesisError, ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

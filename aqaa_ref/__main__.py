"""Command line: ``python -m aqaa_ref <command>``.

    demo                 answer the shipped questions in data_samples/ in speech with the shipped
                         toy models (checkpoints/toy), write the answers to answers/ and report;
                         --train trains the models here first (or reuses them from the cache)
    eval                 the toy StepEval of the test split (shipped models unless --train):
                         [--limit N] [--json F] [--radar F.png] [--waterfall]
    answer Q.wav         answer one spoken question:  --out answer.wav  [--instruction "..."]
                         [--output text+audio|audio|text]; prints the text channel
    train                train the whole toy pipeline: corpus, tokenizer, pre-train, SFT-1, SFT-2,
                         DPO, merge, vocoder; then score held-out questions per stage:  --preset tiny|toy
    export DIR           write the recipe's trained models as a shipped checkpoint folder
                         (aqaa_ref.checkpoints; float16 weights, provenance.json)
    retrain-flow DIR     another flow vocoder for a shipped folder (--set steps=8000), trained on
                         its tokenizer's codes and stored in place of the shipped one
    ablate NAME          the paper's ablations at toy scale (format, concat, codebook, dpo, merge,
                         all), trained on top of the shipped stages (--train: the recipe's
                         cached ones) and printed as tables with 95 % intervals and the
                         paper's claims checked:  --preset tiny|toy  [--limit N] [--seeds N]
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
    from aqaa_ref.data import CorpusConfig, build_corpus

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
    from aqaa_ref.data.samples import write_samples

    out = write_samples(Path(args.out))
    print(f"wrote {out}")
    return 0


def _recipe(args):
    """The recipe of ``--preset`` with every ``--set KEY=VALUE`` applied (validated first)."""
    from aqaa_ref.overrides import apply_overrides
    from aqaa_ref.training.recipe import Recipe

    recipe = apply_overrides(Recipe.from_preset(args.preset), getattr(args, "set", []))
    if getattr(args, "set", []):
        print("overrides: " + ", ".join(args.set), file=sys.stderr)
    return recipe


def _shipped(args) -> Path | None:
    """The shipped checkpoint folder these arguments answer with, or None to train / use the cache.

    Shipped models are the default; ``--train`` or any ``--set`` (a recipe the shipped files
    were not made with) takes the recipe path."""
    from aqaa_ref.checkpoints import default_folder, is_shipped

    if getattr(args, "train", False) or getattr(args, "set", []):
        return None
    folder = Path(args.checkpoints) if getattr(args, "checkpoints", None) else default_folder(args.preset)
    if is_shipped(folder):
        return folder
    if getattr(args, "checkpoints", None):
        raise ValueError(f"{folder}: not a shipped checkpoint folder (no aqaa.json)")
    return None


def _load_aqaa(args):
    from aqaa_ref.inference.pipeline import AQAA

    t0 = time.perf_counter()
    folder = _shipped(args)
    if folder is not None:
        aqaa = AQAA.from_pretrained(folder, stage=args.stage)
        if not args.quiet:
            print(f"shipped models from {_rel(folder)} loaded in {time.perf_counter() - t0:.1f} s "
                  f"(backbone stage {args.stage}; --train retrains everything with this code)", file=sys.stderr)
        return aqaa
    recipe = _recipe(args)
    aqaa = AQAA.from_recipe(recipe, stage=args.stage, progress=not args.quiet)
    if not args.quiet:
        print(f"models ready in {time.perf_counter() - t0:.1f} s (preset {args.preset}, backbone stage {args.stage})",
              file=sys.stderr)
    return aqaa


def _rel(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _check_question(path: str) -> None:
    """Refuse a bad question before any model is loaded or trained (one line, exit 2)."""
    from aqaa_ref.inference.pipeline import load_question

    load_question(path)


def _cmd_answer(args) -> int:
    _check_question(args.question)
    aqaa = _load_aqaa(args)
    ans = aqaa.answer(args.question, instruction=args.instruction, output=args.output)
    if args.output != "audio":
        print(ans.text)
    if ans.wav.numel():
        out = ans.save(args.out)
        print(f"wrote {out} ({ans.seconds:.2f} s of audio; answered in {ans.timings['total']:.2f} s)", file=sys.stderr)
    return 0


def _cmd_demo(args) -> int:
    from aqaa_ref.data.samples import load_samples
    from aqaa_ref.evaluation.demo import answer_samples, summary

    t0 = time.perf_counter()
    folder = _shipped(args)
    if folder is not None:
        print(f"[1/2] the toy models shipped in {_rel(folder)} (no training; `--train` retrains them here)")
    else:
        print("[1/2] the toy models: trained now, or reused when this code and config trained them before")
        _train_everything(args)
    aqaa = _load_aqaa(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    samples = load_samples()
    print(f"[2/2] answering the {len(samples)} shipped questions in data_samples/ -> {out}/")
    judge = _demo_judge(args.preset, folder)
    first = []

    def show(row):
        s, ans, heard = row["sample"], row["answer"], row["heard"]
        first.append(first[0] if first else time.perf_counter() - t0)
        mark = "" if heard is None else ("  [heard correctly]" if heard else "  [not heard correctly]")
        print(f"  {s['file']:<44} Q: {s['question']!r}")
        print(f"  {'':<44} A: {ans.text!r} ({ans.seconds:.1f} s audio, {ans.timings['total']:.2f} s){mark}")

    res = summary(answer_samples(aqaa, judge, out, samples, on_answer=show))
    print(f"\ntext channel correct: {res['text_ok']}/{res['n']}", end="")
    if judge:
        print(f" | answer audio heard as the correct answer by the independent recognizer: {res['heard']}/{res['n']}",
              end="")
    print(f"\nanswers written to {out}/ ; first answer on disk {first[0]:.1f} s after the start; "
          f"total {time.perf_counter() - t0:.1f} s")
    return 0


def _train_everything(args) -> dict:
    """Train whatever of the recipe is not cached yet, the vocoder chain beside the backbone
    chain (``aqaa_ref.training.train_all``); a warm cache makes this a few seconds of loading."""
    from aqaa_ref.training.train_all import train_all

    quiet = getattr(args, "quiet", False)
    return train_all(_recipe(args), judges_preset=args.preset, progress=not quiet,
                     on_stage=None if quiet else (lambda n, s: s > 1 and print(f"  [{n}] {s:.0f} s", file=sys.stderr)))


def _demo_judge(preset: str, folder: Path | None = None):
    """The recognizer-based correctness check of :mod:`aqaa_ref.evaluation.judges` on a sample's
    reference answer: the shipped recognizer when answering with shipped models, else the cached one."""
    from aqaa_ref.evaluation.judges import sample_judge

    if folder is not None and (folder / "judges" / "recognizer").exists():
        from aqaa_ref.checkpoints import load_recognizer
        return sample_judge(preset, recognizer=load_recognizer(folder))
    return sample_judge(preset)


def _cmd_eval(args) -> int:
    from aqaa_ref.evaluation.judges import Judges
    from aqaa_ref.evaluation.scoring import answer_records, evaluate, style_contrasts
    from aqaa_ref.training.recipe import Assets
    from aqaa_ref.data import strided
    from aqaa_ref.viz import radar_plot

    from aqaa_ref.inference.pipeline import AQAA

    recipe = _recipe(args)
    folder = _shipped(args)
    if folder is not None:   # the shipped models; the corpus is built only for its test questions
        from aqaa_ref.checkpoints import load_judges
        from aqaa_ref.data import build_corpus
        from aqaa_ref.training.sequences import tokenize_corpus

        aqaa = _load_aqaa(args)
        corpus = build_corpus(recipe.corpus, progress=not args.quiet)
        table = tokenize_corpus(corpus, aqaa.dual, progress=not args.quiet)
        judges = load_judges(folder)
    else:
        assets = Assets(recipe, progress=not args.quiet)
        aqaa = AQAA.from_recipe(recipe, stage=args.stage, progress=not args.quiet, assets=assets)
        corpus, table = assets.corpus, assets.table
        judges = Judges.load_or_train(corpus, args.preset, progress=not args.quiet)
    items = strided(corpus.split("test"), args.limit)
    t0 = time.perf_counter()
    records = answer_records(aqaa, items, table)
    res = evaluate(records, judges, corpus, progress=not args.quiet)
    print(f"toy StepEval: {len(items)} test questions answered in speech by the {args.stage} model "
          f"({args.preset} preset) and scored from the audio in {time.perf_counter() - t0:.0f} s\n")
    print(res.table("condition"))
    print()
    print(res.table("family"))
    if args.waterfall:
        from aqaa_ref.evaluation.waterfall import waterfall, waterfall_table
        rows = waterfall(aqaa, records, table, judges, corpus, scores=res.scores,
                         progress=not args.quiet)
        print("\nwhere the answers are lost (fractions surviving every stage so far; ceilings on the reference):")
        print(waterfall_table(rows, "condition"))
        print()
        print(waterfall_table(rows, "family"))
    c = style_contrasts(res)
    print(f"\nslow/fast duration per phoneme {c['slow_over_fast']:.2f}; high/low median F0 {c['high_over_low']:.2f} "
          f"(items {c['counts']})")
    if args.json:
        from aqaa_ref.cache import atomic_write_json
        atomic_write_json(Path(args.json), res.to_dict())
        print(f"wrote {args.json}")
    if args.radar:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        radar_plot({args.stage: res}, "correct")
        plt.savefig(args.radar, dpi=120, bbox_inches="tight")
        print(f"wrote {args.radar}")
    return 0


def _cmd_train(args) -> int:
    from aqaa_ref.inference.generation import evaluate_stages
    from aqaa_ref.training.recipe import Assets, run_recipe

    recipe = _recipe(args)
    t0 = time.perf_counter()
    _train_everything(args)
    print(f"everything trained or found in the cache in {time.perf_counter() - t0:.1f} s")
    assets = Assets(recipe)
    res = run_recipe(recipe, assets=assets)
    from aqaa_ref.vocoder import load_or_train_mel2wav, load_or_train_vocoder

    flow = load_or_train_vocoder(assets.corpus, assets.dual, recipe.vocoder)
    m2w = load_or_train_mel2wav(assets.corpus, recipe.mel2wav)
    print(f"\n{'stage':<13} {'examples':>8} {'final loss':>10} {'seconds':>8}   (seconds: when it was trained)")
    for stage, info in res.items():
        print(f"{stage:<13} {info.get('examples', '-'):>8} {info.get('final_loss', float('nan')):>10.3f} {info['seconds']:>8.1f}")
    for name, m in (("flow vocoder", flow), ("mel-to-wave", m2w)):
        info = getattr(m, "train_info", {})
        print(f"{name:<13} {info.get('n_examples', '-'):>8} {'':>10} {info.get('train_seconds', float('nan')):>8.1f}")
    if args.eval:
        scores = evaluate_stages(assets, limit=args.limit)
        print(f"\nheld-out test questions ({args.limit or 'all'}): text accuracy / audio-token accuracy")
        conds = [c for c in next(iter(scores.values())) if c != "all"]
        print(f"{'stage':<9} {'all':>13} " + " ".join(f"{c:>15}" for c in conds))
        for stage, r in scores.items():
            cell = lambda d: f"{d['text_accuracy']:.2f}/{d['audio_token_accuracy']:.2f}"  # noqa: E731
            print(f"{stage:<9} {cell(r['all']):>13} " + " ".join(f"{cell(r[c]):>15}" for c in conds))
    return 0


def _cmd_export(args) -> int:
    import torch

    from aqaa_ref.checkpoints import export, folder_sizes
    from aqaa_ref.provenance import provenance

    recipe = _recipe(args)
    sizes = export(recipe, args.folder, judges_preset=args.preset, dtype=getattr(torch, args.dtype), int8=args.int8,
                   provenance=provenance(recipe, args.preset, " ".join(["python -m aqaa_ref", *sys.argv[1:]])),
                   progress=not args.quiet)
    for k, v in folder_sizes(args.folder).items():
        print(f"  {k:<24} {v / 1e6:7.2f} MB")
    print(f"wrote {args.folder} ({sizes['total'] / 1e6:.1f} MB)")
    return 0


def _cmd_retrain_flow(args) -> int:
    from aqaa_ref.checkpoints import folder_sizes, is_shipped, retrain_flow

    if not is_shipped(args.folder):
        raise ValueError(f"{args.folder}: not a shipped checkpoint folder (no aqaa.json)")
    before = folder_sizes(args.folder)["vocoder/flow"]
    record = {"command": " ".join(["python -m aqaa_ref", *sys.argv[1:]])}
    if args.measured:
        record["measured"] = args.measured
    after = retrain_flow(args.folder, args.set, args.preset, record, progress=not args.quiet)["vocoder/flow"]
    print(f"{args.folder}: vocoder/flow replaced ({', '.join(args.set)}); {before / 1e6:.2f} MB -> {after / 1e6:.2f} MB")
    return 0


def _cmd_store_int8(args) -> int:
    from aqaa_ref.checkpoints import folder_sizes, store_int8

    before = folder_sizes(args.folder)["total"]
    record = {"command": " ".join(["python -m aqaa_ref", *sys.argv[1:]]), "components": list(args.components),
              "from": "the float16 weights stored in the folder"}
    if args.measured:
        record["measured"] = args.measured
    after = store_int8(args.folder, args.components, record)["total"]
    print(f"{args.folder}: {', '.join(args.components)} stored in int8; {before / 1e6:.2f} MB -> {after / 1e6:.2f} MB")
    return 0


INT8_CHOICES = ("vocoder/flow", "vocoder/mel2wav", "judges/recognizer")  # = aqaa_ref.checkpoints.INT8_OPTIONS
ABLATION_CHOICES = ("format", "concat", "codebook", "dpo", "merge", "all")  # = aqaa_ref.evaluation.ablations.ABLATIONS + all


def _cmd_ablate(args) -> int:
    from aqaa_ref.evaluation.ablations import run_ablation

    if args.seeds < 1:
        raise ValueError(f"--seeds must be at least 1, got {args.seeds}")
    run_ablation(args.name, args.preset, args.limit, progress=not args.quiet, seeds=args.seeds,
                 checkpoints=_shipped(args))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m aqaa_ref", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    def set_arg(sp):
        sp.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override one recipe setting, e.g. --set sft1.lr=1e-3 --set vocoder.steps=4000 "
                             "(repeatable; keys are the fields of aqaa_ref.training.recipe.Recipe)")

    def model_args(sp):
        sp.add_argument("--preset", default="toy", choices=["tiny", "toy"])
        sp.add_argument("--train", action="store_true",
                        help="train (or reuse from the cache) the recipe's models instead of the shipped checkpoints")
        sp.add_argument("--checkpoints", default=None, metavar="DIR",
                        help="a shipped checkpoint folder (default: checkpoints/<preset>, when it exists)")
        sp.add_argument("--stage", default="merge", choices=["sft1", "sft2", "dpo", "merge"],
                        help="which backbone checkpoint answers")
        sp.add_argument("--quiet", action="store_true", help="no progress bars")
        set_arg(sp)

    demo = sub.add_parser("demo", help="answer the shipped questions with the shipped toy models (--train: train them)")
    model_args(demo)
    demo.add_argument("--out", default="answers", help="folder for the answer audio")
    demo.set_defaults(func=_cmd_demo)
    ev = sub.add_parser("eval", help="the toy StepEval: answer the test questions in speech and score the audio")
    model_args(ev)
    ev.add_argument("--limit", type=int, default=None, help="score an evenly strided subset of N test questions")
    ev.add_argument("--json", default=None, help="also write every score to this JSON file")
    ev.add_argument("--radar", default=None, help="also draw the radar plot to this PNG")
    ev.add_argument("--waterfall", action="store_true",
                    help="also follow every answer down the chain: understood, tokens right, heard right")
    ev.set_defaults(func=_cmd_eval)
    ans = sub.add_parser("answer", help="answer one spoken question")
    ans.add_argument("question", help="the question: a WAV/FLAC/OGG file, any sample rate")
    ans.add_argument("--out", default="answer.wav")
    ans.add_argument("--instruction", default=None, help='a text instruction, e.g. "answer slowly"')
    ans.add_argument("--output", default="text+audio", choices=["text+audio", "audio", "text"])
    model_args(ans)
    ans.set_defaults(func=_cmd_answer)
    tr = sub.add_parser("train", help="run the post-training path and score each stage")
    tr.add_argument("--preset", default="toy", choices=["tiny", "toy"])
    tr.add_argument("--no-eval", dest="eval", action="store_false")
    tr.add_argument("--limit", type=int, default=None, help="score only the first N test questions")
    set_arg(tr)
    tr.set_defaults(func=_cmd_train)
    ab = sub.add_parser("ablate", help="run one of the paper's ablations at toy scale and print its table")
    ab.add_argument("name", choices=ABLATION_CHOICES)
    ab.add_argument("--preset", default="toy", choices=["tiny", "toy"])
    ab.add_argument("--limit", type=int, default=None, help="score this many strided test questions")
    ab.add_argument("--seeds", type=int, default=1, help="train every variant under seeds 0..N-1 (intervals, "
                    "verdicts over the seed-averaged items)")
    ab.add_argument("--checkpoints", default=None, metavar="DIR",
                    help="start from this shipped folder's stages (default: checkpoints/<preset>, when it exists)")
    ab.add_argument("--train", action="store_true", help="start from the recipe's own cached stages instead "
                    "(trained first when missing)")
    ab.add_argument("--quiet", action="store_true", help="no progress bars")
    ab.set_defaults(func=_cmd_ablate)
    ex = sub.add_parser("export", help="write the recipe's trained models as a shipped checkpoint folder")
    ex.add_argument("folder", help="e.g. checkpoints/toy")
    ex.add_argument("--preset", default="toy", choices=["tiny", "toy"])
    ex.add_argument("--dtype", default="float16", choices=["float16", "bfloat16", "float32"])
    ex.add_argument("--int8", nargs="*", default=["vocoder/flow"], choices=INT8_CHOICES,
                    metavar="COMPONENT", help="store these components' weight matrices in int8 (default: the flow "
                    "vocoder, measured unchanged; `--int8` alone: everything in float16)")
    ex.add_argument("--quiet", action="store_true")
    set_arg(ex)
    ex.set_defaults(func=_cmd_export)
    q8 = sub.add_parser("store-int8", help="re-store components of a shipped folder with int8 weight matrices")
    q8.add_argument("folder", help="e.g. checkpoints/toy")
    q8.add_argument("components", nargs="+", choices=INT8_CHOICES)
    q8.add_argument("--measured", default=None, help="where the measurement that justifies it is recorded")
    q8.set_defaults(func=_cmd_store_int8)
    rf = sub.add_parser("retrain-flow", help="train (or take from the cache) another flow vocoder on a shipped "
                        "folder's tokenizer codes and store it there in place of the shipped one")
    rf.add_argument("folder", help="e.g. checkpoints/toy")
    rf.add_argument("--set", action="append", default=[], required=True, metavar="FIELD=VALUE",
                    help="a VocoderConfig field, e.g. --set steps=8000")
    rf.add_argument("--preset", default="toy", choices=["tiny", "toy"])
    rf.add_argument("--measured", default=None, help="where the measurement that justifies it is recorded")
    rf.add_argument("--quiet", action="store_true")
    rf.set_defaults(func=_cmd_retrain_flow)
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
    from aqaa_ref.audio import AudioError
    from aqaa_ref.data.espeak import SynthesisError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (AudioError, SynthesisError, ValueError, FileNotFoundError) as e:   # CheckpointError is a ValueError
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""The flow vocoder's ceiling (issue 14, item 2): reference answer tokens vocoded, judged.

    .venv/bin/python benchmarks/bench_vocoder_ceiling.py                              # the toy vocoder
    .venv/bin/python benchmarks/bench_vocoder_ceiling.py --set extra_speech=3000 --threads 1
    .venv/bin/python benchmarks/bench_vocoder_ceiling.py --preset tiny --limit 8      # a dry run
    .venv/bin/python benchmarks/bench_vocoder_ceiling.py --checkpoints checkpoints/toy  # the shipped vocoder
    .venv/bin/python benchmarks/bench_vocoder_ceiling.py --checkpoints checkpoints/toy --set extra_speech=4000
    .venv/bin/python benchmarks/bench_vocoder_ceiling.py --checkpoints checkpoints/toy --set steps=4000 --end-to-end

With ``--checkpoints`` the shipped tokenizer, mel-to-wave model and judges are used (nothing of
theirs is trained); the shipped flow vocoder is judged, sampled with any ``--set`` of the
inference fields (n_steps, guidance, temperature), and a ``--set`` of any training field trains a
new flow on the shipped tokenizer's codes.

Trains (or loads from the cache) the recipe's vocoder with each ``--set FIELD=VALUE`` of
:class:`~aqaa_ref.vocoder.VocoderConfig` applied, then vocodes the *reference* answer tokens of
the test split (all items, or a strided ``--limit``) and of ``--train-items`` training items,
and judges each as an answer (``aqaa_ref.evaluation.waterfall.vocoder_ceiling``): heard right,
the recognizer's PER, F0 within 10 % of the reference, voice recognised; beside them copy
synthesis (the reference mel through the mel-to-wave model), whose PER is the floor.
Item 2's targets: heard right >= 0.95, PER <= 2x copy synthesis, F0 ok and voice >= 0.90.

Writes ``benchmarks/results/vocoder_ceiling_<tag>.json`` (tag: ``--tag`` or the overrides).
"""
from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).parent / "results"


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", default="toy")
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="a VocoderConfig field")
    ap.add_argument("--limit", type=int, default=None, help="a strided subset of the test split")
    ap.add_argument("--train-items", type=int, default=60, help="training items judged the same way (0: none)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tag", default=None)
    ap.add_argument("--checkpoints", default=None, metavar="DIR", help="a shipped folder (see above)")
    ap.add_argument("--end-to-end", action="store_true",
                    help="with --checkpoints: also answer the test questions with the shipped merge, vocode "
                         "them with this flow and judge them (the evaluation's table)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    from aqaa_ref.cache import atomic_write_json
    from aqaa_ref.data import strided
    from aqaa_ref.evaluation.judges import Judges
    from aqaa_ref.evaluation.waterfall import ceiling_summary, vocoder_ceiling
    from aqaa_ref.overrides import apply_overrides
    from aqaa_ref.training.recipe import Assets, Recipe
    from aqaa_ref.vocoder import Vocoder, load_or_train_mel2wav, load_or_train_vocoder
    from aqaa_ref.vocoder.train import INFERENCE_FIELDS, with_inference_settings

    recipe = Recipe.from_preset(args.preset)
    cfg = apply_overrides(recipe.vocoder, args.set)
    assets = Assets(recipe, pretrained=args.checkpoints)
    t0 = time.perf_counter()
    if args.checkpoints:
        from aqaa_ref import checkpoints

        shipped = checkpoints.load_vocoder(args.checkpoints)
        m2w, judges = shipped.mel2wav, checkpoints.load_judges(args.checkpoints)
        if any(s.split("=")[0] not in INFERENCE_FIELDS for s in args.set):   # a training change: a new flow
            flow = load_or_train_vocoder(assets.corpus, assets.dual, cfg)
        else:                                    # the shipped flow, sampled with any new inference settings
            flow = with_inference_settings(shipped.flow, cfg)
            meta = checkpoints.read_json(Path(args.checkpoints) / "vocoder" / "flow" / "config.json")
            flow.train_info = meta.get("train_info", {})
    else:
        flow = load_or_train_vocoder(assets.corpus, assets.dual, cfg)
        m2w = load_or_train_mel2wav(assets.corpus, recipe.mel2wav).eval()
        judges = Judges.load_or_train(assets.corpus, args.preset)
    train_seconds = flow.train_info.get("train_seconds", float("nan"))
    print(f"vocoder ready in {time.perf_counter() - t0:.0f} s (trained in {train_seconds:.0f} s, "
          f"{flow.train_info.get('n_examples', '?')} clips, {cfg.steps} steps)", flush=True)
    vocoder = Vocoder(flow, m2w)

    t0 = time.perf_counter()
    out = dict(preset=args.preset, overrides=args.set, checkpoints=args.checkpoints, steps=cfg.steps,
               extra_speech=cfg.extra_speech,
               temperature=cfg.temperature, train_seconds=train_seconds, threads=args.threads)
    test = strided(assets.corpus.split("test"), args.limit) if args.limit else assets.corpus.split("test")
    rows = vocoder_ceiling(vocoder, test, assets.table, judges, assets.corpus, assets.vocab, progress=True)
    out["test"] = {by: ceiling_summary(rows, by) for by in ("condition", "family")}
    if args.train_items:
        train = strided([it for it in assets.corpus.split("train") if it.language == "en"], args.train_items)
        train_rows = vocoder_ceiling(vocoder, train, assets.table, judges, assets.corpus, assets.vocab)
        out["train_en"] = ceiling_summary(train_rows, "language")["all"]
        out["test_en"] = ceiling_summary([r for r in rows if r["language"] == "en"], "language")["all"]
    print(f"\nreference tokens vocoded ({', '.join(args.set) or 'the recipe vocoder'}): "
          "heard right, PER, F0 within 10 %, voice recognised | copy synthesis: heard right, PER")
    line = "  {:<16} n={:<4} {:.3f}  {:.3f}  {:.3f}  {:.3f} | {:.3f}  {:.3f}"
    for g, s in out["test"]["condition"].items():
        print(line.format(g, s["n"], s["correct"], s["per"], s["f0_ok"], s["voice_ok"], s["copy_correct"], s["copy_per"]))
    for k in ("train_en", "test_en"):
        if k in out:
            s = out[k]
            print(line.format(k, s["n"], s["correct"], s["per"], s["f0_ok"], s["voice_ok"], s["copy_correct"],
                              s["copy_per"]))
    out["judge_seconds"] = time.perf_counter() - t0
    if args.end_to_end and args.checkpoints:
        from aqaa_ref.evaluation.scoring import answer_records, evaluate
        from aqaa_ref.inference.pipeline import AQAA

        aqaa = AQAA.from_pretrained(args.checkpoints)
        aqaa.vocoder = vocoder
        res = evaluate(answer_records(aqaa, test, assets.table), judges, assets.corpus)
        print("\nend to end: the shipped merge's answers, vocoded by this flow")
        print(res.table("condition"))
        out["end_to_end"] = {k: v for k, v in res.to_dict().items() if k != "scores"}
    out["load_average"] = os.getloadavg()[0]
    print(f"judged in {out['judge_seconds']:.0f} s on {args.threads} threads (load average {out['load_average']:.1f}, "
          f"{platform.processor() or platform.machine()})")
    tag = args.tag or ("-".join(s.replace("=", "") for s in args.set) or ("shipped" if args.checkpoints else "recipe"))
    atomic_write_json(RESULTS / f"vocoder_ceiling_{args.preset}_{tag}.json", out)
    return out


if __name__ == "__main__":
    main()

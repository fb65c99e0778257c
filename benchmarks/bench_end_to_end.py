"""End to end, against issue 7's targets: training time, spoken-answer accuracy by test
condition, the text-in control, style contrasts and latency.

    .venv/bin/python benchmarks/bench_end_to_end.py                 # toy models (trained or cached)
    .venv/bin/python benchmarks/bench_end_to_end.py --limit 84      # a strided subset of the test split
    .venv/bin/python benchmarks/bench_end_to_end.py --no-control    # skip the text-in control model

1. **training time**: the seconds each cached component took to train (tokenizer, the five
   backbone stages, flow vocoder, mel-to-wave model), as recorded when it was trained;
2. **accuracy**: every test question answered in speech by the merged model
   (``AQAA.answer``), scored from the answer audio by the toy StepEval (``aqaa_ref.evaluation.scoring``):
   target >= 0.90 correct on seen facts spoken by an unseen voice / with unseen prosody;
3. **unseen facts vs the text-in control**: a control backbone fine-tuned exactly like SFT-1
   but on the question's *text* instead of its audio (same pre-trained start, same steps);
   target: audio-in accuracy >= 0.95 x the control's, on the unseen-fact questions;
4. **style contrasts**: "slow" answers >= 1.3x the duration (per phoneme) of "fast" ones,
   "high" answers >= 1.2x the median F0 of "low" ones;
5. **latency**: for the test questions nearest 2 s long, seconds from the question to the
   whole answer (``answer``) and to the first audio piece (``stream``); targets <= 2 s, <= 0.5 s.
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from aqaa_ref.cache import atomic_write_json
from aqaa_ref.data import strided
from aqaa_ref.evaluation.judges import Judges
from aqaa_ref.evaluation.scoring import AnswerRecord, answer_records, evaluate, style_contrasts
from aqaa_ref.inference.generation import same_answer
from aqaa_ref.inference.pipeline import AQAA
from aqaa_ref.training.recipe import Assets, Recipe

RESULTS = Path(__file__).parent / "results"


def training_seconds(assets: Assets, aqaa: AQAA) -> dict:
    """What each component took to train, from the records the cache keeps."""
    from aqaa_ref.tokenizer.dual import tokenizer_dir

    out = {}
    cfg = assets.recipe.tokenizer
    log = json.loads((tokenizer_dir(assets.corpus, cfg) / "train_log.json").read_text())
    out["tokenizer"] = sum(v for k, v in log.get("seconds", log).items() if k.endswith("seconds")
                           and isinstance(v, (int, float)) and "cpu" not in k)
    for stage in ("pretrain", "sft1", "sft2", "dpo", "merge"):
        out[stage] = json.loads((assets.recipe.stage_dir(stage) / "done.json").read_text())["seconds"]
    out["flow vocoder"] = aqaa.vocoder.flow.train_info.get("train_seconds", float("nan"))
    out["mel-to-wave"] = getattr(aqaa.vocoder.mel2wav, "train_info", {}).get("train_seconds", float("nan"))
    out["total"] = sum(out.values())
    return out


def control_model(assets: Assets, steps: int | None):
    """SFT-1's training, on text questions, from the same pre-trained checkpoint (cached)."""
    from dataclasses import replace

    from aqaa_ref.cache import config_hash
    from aqaa_ref.training.sequences import sft_examples
    from aqaa_ref.training.loop import load_weights, train

    r = assets.recipe
    cfg = replace(r.sft1, steps=steps or r.sft1.steps)
    d = r.stage_dir("pretrain").parent / f"control_text_in-{config_hash(cfg, r.stage_key('sft1'))}"
    model = assets.load_stage("pretrain")
    if not (d / "done.json").exists():
        examples = sft_examples(assets.builder, assets.corpus.split("train"), r.aqta_fraction, r.seed, question="text")
        t0 = time.perf_counter()
        res = train(model.train(), examples, cfg, d, desc="control SFT (text in)")
        atomic_write_json(d / "done.json", {"seconds": time.perf_counter() - t0, "final_loss": res.final_loss,
                                            "steps": cfg.steps})
    return load_weights(model, d).eval(), json.loads((d / "done.json").read_text())


def latency(aqaa: AQAA, corpus, n: int = 5) -> dict:
    items = sorted(corpus.split("test"), key=lambda it: abs(it.question_audio.seconds - 2.0))[:n]
    rows = []
    for it in items:
        path = corpus.root / it.question_audio.path
        ans = aqaa.answer(path)
        t0, first = time.perf_counter(), None
        for ev in aqaa.stream(path):
            if ev.kind == "audio" and first is None:
                first = time.perf_counter() - t0
        rows.append(dict(question_s=it.question_audio.seconds, answer_s=ans.timings["total"], first_audio_s=first,
                         answer_audio_s=ans.seconds))
    med = lambda k: sorted(r[k] for r in rows)[len(rows) // 2]  # noqa: E731
    return {"rows": rows, "median_answer_s": med("answer_s"), "median_first_audio_s": med("first_audio_s")}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", default="toy")
    ap.add_argument("--limit", type=int, default=None, help="score a strided subset of the test split")
    ap.add_argument("--no-control", dest="control", action="store_false")
    ap.add_argument("--control-steps", type=int, default=None, help="default: the recipe's SFT-1 steps")
    args = ap.parse_args()
    torch.manual_seed(0)

    recipe = Recipe.from_preset(args.preset)
    assets = Assets(recipe, progress=False)
    aqaa = AQAA.from_recipe(recipe, assets=assets, progress=True)
    judges = Judges.load_or_train(assets.corpus, args.preset, progress=False)
    report = {"preset": args.preset, "threads": torch.get_num_threads(), "machine": platform.processor() or platform.machine()}

    secs = training_seconds(assets, aqaa)
    report["training_seconds"] = secs
    print("training time (s, as recorded; the 2 cores were shared while training):")
    for k, v in secs.items():
        print(f"  {k:<14} {v:8.1f}")

    items = strided(assets.corpus.split("test"), args.limit)
    t0 = time.perf_counter()
    records = answer_records(aqaa, items, assets.table)
    gen_s = time.perf_counter() - t0
    res = evaluate(records, judges, assets.corpus)
    text_ok = [same_answer(r.text, it.answer_text) for it, r in zip(items, records)]
    print(f"\n{len(items)} test questions answered in speech in {gen_s:.1f} s; toy StepEval by condition:")
    print(res.table("condition"))
    print("\nby family:")
    print(res.table("family"))
    by_cond = res.summary("condition")
    report["eval"] = {"by_condition": by_cond, "by_family": res.summary("family")}
    report["text_channel_accuracy"] = {c: sum(ok for ok, it in zip(text_ok, items) if it.condition == c) /
                                       max(1, sum(it.condition == c for it in items))
                                       for c in sorted({it.condition for it in items})}
    print("text channel accuracy by condition:", {k: round(v, 3) for k, v in report["text_channel_accuracy"].items()})

    contrasts = style_contrasts(res)
    report["style_contrasts"] = contrasts
    print(f"\nslow / fast duration per phoneme: {contrasts['slow_over_fast']:.2f} (target >= 1.3); "
          f"high / low median F0: {contrasts['high_over_low']:.2f} (target >= 1.2); counts {contrasts['counts']}")

    unseen = [it for it in items if it.condition == "unseen_fact"]
    if args.control and unseen:
        model, info = control_model(assets, args.control_steps)
        control = AQAA(aqaa.dual, model, aqaa.builder, aqaa.vocoder)      # the control's weights, text prompts
        prompts = [aqaa.builder.prompt([], it.instruction, "text+audio", question_text=it.question.text) for it in unseen]
        ctl = control.answer_prompts(prompts)
        ctl_res = evaluate([AnswerRecord(it, a.wav, a.text) for it, a in zip(unseen, ctl)], judges, assets.corpus)
        a = by_cond["unseen_fact"]["correct"]
        c = ctl_res.summary("condition")["unseen_fact"]["correct"]
        ctl_text = sum(same_answer(a.text, it.answer_text) for it, a in zip(unseen, ctl)) / len(unseen)
        report["control"] = {"info": info, "audio_in_correct": a, "text_in_correct": c, "ratio": a / c if c else None,
                             "audio_in_text_accuracy": report["text_channel_accuracy"]["unseen_fact"],
                             "text_in_text_accuracy": ctl_text}
        print(f"\nunseen facts ({len(unseen)}): audio-in correct {a:.3f} vs text-in control {c:.3f} "
              f"(ratio {a / c if c else float('nan'):.2f}, target >= 0.95); "
              f"text channel {report['text_channel_accuracy']['unseen_fact']:.3f} "
              f"vs {ctl_text:.3f}; control trained {info['steps']} steps in {info['seconds']:.0f} s")

    lat = latency(aqaa, assets.corpus)
    report["latency"] = lat
    print(f"\nlatency, {len(lat['rows'])} questions of about 2 s: answer {lat['median_answer_s']:.2f} s (target <= 2), "
          f"first audio {lat['median_first_audio_s']:.2f} s (target <= 0.5), median; {torch.get_num_threads()} threads")
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"end_to_end_{args.preset}.json"
    atomic_write_json(path, {k: v for k, v in report.items()})
    print(f"saved {path}")


if __name__ == "__main__":
    main()

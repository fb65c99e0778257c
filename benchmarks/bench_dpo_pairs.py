"""Preference data DPO can learn from (issue 15, item 2): SFT-1's own wrong answers as rejections.

    .venv/bin/python benchmarks/bench_dpo_pairs.py                          # from checkpoints/toy
    .venv/bin/python benchmarks/bench_dpo_pairs.py --betas 0.1 --lrs 2e-4   # one setting
    .venv/bin/python benchmarks/bench_dpo_pairs.py --preset tiny --own-items 8 --betas 0.1 --lrs 2e-4  # dry run

1. How plausible the rejected answers are *before* any DPO: SFT-1's pair accuracy (chosen ranked
   above rejected by the text log-prob) on held-out validation pairs of both kinds: the recipe's
   synthetic ones (another item's answer, an evasion) and SFT-1's own wrong answers to the
   validation questions (``aqaa_ref.training.sequences.own_answer_pairs``). A pair the model
   already ranks right teaches DPO little.
2. A small sweep of DPO on SFT-1's own wrong answers to ``--own-items`` training questions
   (``Recipe.dpo_rejected="own"``) over beta and the learning rate, each scored on the validation
   split (text and audio-token accuracy, pair accuracy on the own validation pairs); the setting
   with the best validation text accuracy is chosen.
3. The chosen setting, SFT-1 and the shipped (synthetic-pair) DPO on the whole test split, with
   95 % bootstrap intervals and paired differences against SFT-1.

Writes ``benchmarks/results/dpo_pairs_<preset>.json``.
"""
from __future__ import annotations

import argparse
import itertools
import os
import platform
import time
from dataclasses import replace
from pathlib import Path

import torch

RESULTS = Path(__file__).parent / "results"


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", default="toy")
    ap.add_argument("--checkpoints", default=None, metavar="DIR", help="default: checkpoints/<preset> when shipped")
    ap.add_argument("--betas", type=float, nargs="+", default=[0.1, 0.5])
    ap.add_argument("--lrs", type=float, nargs="+", default=[2e-4, 5e-5])
    ap.add_argument("--own-items", type=int, default=1200, help="training questions SFT-1 answers for its own pairs")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    from aqaa_ref.cache import atomic_write_json
    from aqaa_ref.checkpoints import default_folder, is_shipped
    from aqaa_ref.evaluation.ablations.dpo import preference_metrics
    from aqaa_ref.inference.generation import answers_memoised, score_answers
    from aqaa_ref.metrics import bootstrap_interval, paired_bootstrap
    from aqaa_ref.training.recipe import Assets, Recipe, ensure_stage
    from aqaa_ref.training.sequences import own_answer_pairs, preference_pairs

    folder = args.checkpoints or default_folder(args.preset)
    folder = folder if is_shipped(folder) else None
    base = Assets(Recipe.from_preset(args.preset), pretrained=folder)
    r = base.recipe
    ensure_stage("dpo", base)
    sft1 = base.load_stage("sft1")
    val, test = base.corpus.split("val"), base.corpus.split("test")
    t0 = time.perf_counter()

    def scored(model, items):
        answers = answers_memoised(model, base.builder, items)
        return answers, score_answers(base.builder, items, answers)

    # 1. pair accuracy before DPO, on held-out pairs of both kinds
    val_ans, val_scores = scored(sft1, val)
    own_val = own_answer_pairs(base.builder, val, val_ans, [s.text_correct for s in val_scores])
    syn_val = preference_pairs(base.builder, val, base.evasion_audio(), r.seed, r.dpo_evasion_fraction)
    before = {"synthetic": {"pairs": len(syn_val), **preference_metrics(sft1, syn_val, base.vocab)},
              "own": {"pairs": len(own_val), **preference_metrics(sft1, own_val, base.vocab)}}
    print("SFT-1 before DPO, held-out validation pairs (pair accuracy, text log-prob margin):")
    for kind, m in before.items():
        print(f"  {kind:<10} n={m['pairs']:<4} pair accuracy {m['pair_accuracy']:.3f}  margin {m['text_margin']:+.2f}")

    # 2. the sweep, chosen on validation
    def val_row(name, model, extra=None):
        _, sc = scored(model, val)
        return {"variant": name, "n": len(sc), "val_text_accuracy": sum(s.text_correct for s in sc) / len(sc),
                "val_audio_token_accuracy": sum(s.audio_token_accuracy for s in sc) / len(sc),
                "own_val_pair_accuracy": preference_metrics(model, own_val, base.vocab)["pair_accuracy"],
                **(extra or {})}

    dpo_synthetic = base.load_stage("dpo")
    rows = [val_row("sft1", sft1), val_row("dpo synthetic (recipe)", dpo_synthetic)]
    variants = {}
    for beta, lr in itertools.product(args.betas, args.lrs):
        v = base.variant(dpo_rejected="own", dpo_own_items=args.own_items, dpo_beta=beta, dpo=replace(r.dpo, lr=lr))
        info = ensure_stage("dpo", v)
        name = f"dpo own beta={beta:g} lr={lr:g}"
        variants[name] = v
        rows.append(val_row(name, v.load_stage("dpo"), {"beta": beta, "lr": lr, "pairs": info.get("pairs"),
                                                        "train_seconds": info.get("seconds")}))
    print("\nvalidation split (n = {}):".format(len(val)))
    for row in rows:
        print(f"  {row['variant']:<32} text {row['val_text_accuracy']:.3f}  audio tokens "
              f"{row['val_audio_token_accuracy']:.3f}  own-pair accuracy {row['own_val_pair_accuracy']:.3f}"
              + (f"  ({row['pairs']} pairs, {row['train_seconds']:.0f} s)" if "pairs" in row else ""))
    own_rows = [row for row in rows if row["variant"] in variants]
    best = max(own_rows, key=lambda x: (x["val_text_accuracy"], x["val_audio_token_accuracy"]))
    print(f"chosen on validation: {best['variant']}")

    # 3. the test split: SFT-1, the recipe's DPO, the chosen DPO
    models = {"sft1": sft1, "dpo synthetic (recipe)": dpo_synthetic,
              best["variant"]: variants[best["variant"]].load_stage("dpo")}
    per_item = {}
    test_rows = []
    for name, model in models.items():
        _, sc = scored(model, test)
        text = [float(s.text_correct) for s in sc]
        audio = [float(s.audio_token_accuracy) for s in sc]
        per_item[name] = (text, audio)
        test_rows.append({"variant": name, "n": len(sc), "text_accuracy": sum(text) / len(text),
                          "text_accuracy_ci": list(bootstrap_interval(text)),
                          "audio_token_accuracy": sum(audio) / len(audio),
                          "audio_token_accuracy_ci": list(bootstrap_interval(audio))})
    print(f"\ntest split (n = {len(test)}), 95 % bootstrap intervals; differences paired against SFT-1:")
    for row in test_rows:
        line = (f"  {row['variant']:<32} text {row['text_accuracy']:.3f} [{row['text_accuracy_ci'][0]:.3f}, "
                f"{row['text_accuracy_ci'][1]:.3f}]  audio tokens {row['audio_token_accuracy']:.3f}")
        if row["variant"] != "sft1":
            d = paired_bootstrap(per_item[row["variant"]][0], per_item["sft1"][0])
            row["text_minus_sft1"] = list(d)
            line += f"  text - SFT-1 {d[0]:+.3f} [{d[1]:+.3f}, {d[2]:+.3f}]"
        print(line)
    out = dict(preset=args.preset, checkpoints=str(folder) if folder else None, own_items=args.own_items,
               before=before, validation=rows, chosen=best["variant"], test=test_rows,
               seconds=time.perf_counter() - t0, threads=args.threads, load_average=os.getloadavg()[0],
               machine=platform.processor() or platform.machine())
    print(f"\n{out['seconds']:.0f} s on {args.threads} threads (load average {out['load_average']:.1f})")
    if args.preset != "tiny":
        atomic_write_json(RESULTS / f"dpo_pairs_{args.preset}.json", out)
    return out


if __name__ == "__main__":
    main()

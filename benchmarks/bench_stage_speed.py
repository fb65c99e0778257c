"""Seconds per training step of the toy recipe's pre-training and SFT-1, on this machine now.

    .venv/bin/python benchmarks/bench_stage_speed.py          # ~1 minute; prints the extrapolated stage times

Twelve steps of each stage's real configuration (examples, batch, precision) into a
temporary folder: the per-step time extrapolates to the recipe's step count. Run it on idle
cores to see what the 20-minute target of issue 7 is up against.
"""
import os
import tempfile
import time
from dataclasses import replace

import torch

from aqaa_ref.training.loop import train
from aqaa_ref.training.recipe import Assets, Recipe
from aqaa_ref.training.sequences import pretrain_examples, sft_examples

STEPS = 12


def main():
    r = Recipe.from_preset("toy")
    a = Assets(r, progress=False)
    print(f"torch threads {torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f}")
    stages = [("pretrain", pretrain_examples(a.builder, a.corpus, r.pretrain_mix, r.seed), r.pretrain),
              ("sft1", sft_examples(a.builder, a.corpus.split("train"), r.aqta_fraction, r.seed), r.sft1)]
    for name, examples, cfg in stages:
        model = a.new_model()
        short = replace(cfg, steps=STEPS, checkpoint_every=0, progress=False)
        with tempfile.TemporaryDirectory() as d:
            t0 = time.perf_counter()
            train(model, examples, short, d)
            per_step = (time.perf_counter() - t0) / STEPS
        print(f"{name:<9} {per_step:.2f} s/step -> {cfg.steps} steps = {per_step * cfg.steps / 60:.1f} min")


if __name__ == "__main__":
    main()

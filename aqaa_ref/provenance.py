"""Where a set of trained models came from: the record written beside shipped checkpoints.

``provenance(recipe, ...)`` gathers the exact command, the code commit (and whether the work
tree had uncommitted changes), every component's config and cache key, the training seconds
each piece took (as recorded when it was trained), and the machine. Scores measured on the
shipped files are added by ``benchmarks/bench_shipped.py``.
"""
from __future__ import annotations

import dataclasses
import json
import os
import platform
import subprocess
import time
from pathlib import Path

import torch

from aqaa_ref.cache import _jsonable

REPO = Path(__file__).resolve().parent.parent


def git_commit() -> dict:
    """{"commit": HEAD's hash, "dirty": uncommitted changes to tracked code} (None when not a git checkout).

    Outputs (checkpoints/, benchmarks/results/) do not count: an export rewrites them."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                                ":!checkpoints", ":!benchmarks/results"], cwd=REPO, capture_output=True,
                               text=True, check=True).stdout.strip()
        return {"commit": head, "dirty": bool(dirty)}
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "dirty": None}


def machine() -> dict:
    from aqaa_ref.precision import bf16_is_faster

    return dict(platform=platform.platform(), processor=platform.processor() or platform.machine(),
                cores=os.cpu_count(), torch=torch.__version__, cpu_capability=torch.backends.cpu.get_cpu_capability(),
                bf16_autocast=bf16_is_faster())


def training_seconds(recipe, judges_preset: str | None = None) -> dict:
    """Seconds each cached piece took to train, as recorded in its cache folder."""
    from aqaa_ref.data import build_corpus
    from aqaa_ref.tokenizer.dual import tokenizer_dir
    from aqaa_ref.training.recipe import STAGES

    out = {}
    for s in STAGES:
        done = recipe.stage_dir(s) / "done.json"
        if done.exists():
            out[s] = round(json.loads(done.read_text())["seconds"], 1)
    corpus = build_corpus(recipe.corpus, progress=False)
    log = tokenizer_dir(corpus, recipe.tokenizer) / "train_log.json"
    if log.exists():
        out["tokenizer"] = {k.removesuffix("_seconds"): round(v, 1) for k, v in json.loads(log.read_text()).items()
                            if k.endswith("_seconds") and not k.endswith("cpu_seconds") and isinstance(v, (int, float))}
    from aqaa_ref.vocoder.mel2wav import mel2wav_dir
    from aqaa_ref.vocoder.train import vocoder_dir
    from aqaa_ref.tokenizer import load_or_train_dual

    dual = load_or_train_dual(corpus, recipe.tokenizer, progress=False)
    for name, folder in (("flow vocoder", vocoder_dir(corpus, dual, recipe.vocoder)),
                         ("mel-to-wave", mel2wav_dir(corpus, recipe.mel2wav))):
        cfg = folder / "config.json"
        if cfg.exists():
            out[name] = round(json.loads(cfg.read_text()).get("train_info", {}).get("train_seconds", float("nan")), 1)
    return out


def provenance(recipe, judges_preset: str | None, command: str) -> dict:
    """The record of :mod:`aqaa_ref.checkpoints`' provenance.json (without scores)."""
    from aqaa_ref.training.recipe import STAGES

    bench = REPO / "benchmarks" / "results" / f"pipeline_time_{recipe.name}.json"
    settings = {f.name: getattr(recipe, f.name) for f in dataclasses.fields(recipe)}
    settings["backbone"] = recipe.backbone.hyperparameters()
    return dict(command=command, written=time.strftime("%Y-%m-%d %H:%M:%S %Z"), **git_commit(),
                recipe=_jsonable(settings), stage_keys={s: recipe.stage_key(s) for s in STAGES},
                judges_preset=judges_preset, training_seconds=training_seconds(recipe, judges_preset),
                machine=machine(),
                # the last whole-pipeline run from an empty cache (benchmarks/bench_pipeline_time.py), if any
                pipeline_benchmark=json.loads(bench.read_text()) if bench.exists() else None)

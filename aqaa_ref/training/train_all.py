"""Train every toy model a spoken answer needs, using both cores: two chains side by side.

Once the corpus and the dual tokenizer exist, the work splits into two chains that share
nothing but those files::

    corpus -> dual tokenizer -> audio codes + text BPE ─┬─> pretrain -> sft1 -> sft2 -> dpo -> merge   (this process)
                                                        └─> flow vocoder -> mel-to-wave -> judges       (a worker process)

Each chain gets one core (one torch thread): a 2-core machine then does two chains' work
at once, instead of one chain on two threads that mostly wait on each other (the models
are small, so two threads speed a step up by far less than 2x). When the worker finishes
first, the backbone chain takes the second thread back for its remaining stages.

Everything is cached exactly as when each piece is trained on its own (the same keys, the
same files), so a later ``AQAA.from_recipe`` loads it all without training.
"""
from __future__ import annotations

import multiprocessing as mp
import time
from concurrent.futures import Future, ProcessPoolExecutor

import torch

from aqaa_ref.threads import torch_threads


def train_side_chain(recipe, judges_preset: str | None, progress: bool = False, threads: int | None = None) -> dict:
    """The chain that does not need the backbone: flow vocoder, mel-to-wave, judges.

    threads: torch threads for this chain (the worker process passes 1). Returns {name: seconds}
    (about 0 for a model found in the cache)."""
    from aqaa_ref.data import build_corpus
    from aqaa_ref.evaluation.judges import Judges
    from aqaa_ref.tokenizer import load_or_train_dual
    from aqaa_ref.vocoder import load_or_train_mel2wav, load_or_train_vocoder

    if threads:
        torch.set_num_threads(threads)
    corpus = build_corpus(recipe.corpus, progress=False)
    dual = load_or_train_dual(corpus, recipe.tokenizer, progress=False)
    seconds = {}
    for name, fn in (("flow vocoder", lambda: load_or_train_vocoder(corpus, dual, recipe.vocoder, progress=progress)),
                     ("mel-to-wave", lambda: load_or_train_mel2wav(corpus, recipe.mel2wav, progress=progress)),
                     ("judges", lambda: judges_preset and Judges.load_or_train(corpus, judges_preset, progress=progress))):
        t0 = time.perf_counter()
        fn()
        seconds[name] = time.perf_counter() - t0
    return seconds


def train_all(recipe, judges_preset: str | None = None, concurrent: bool = True, progress: bool = True,
              on_stage=None) -> dict:
    """Train (or load from the cache) the corpus, tokenizers, five backbone stages, vocoder,
    mel-to-wave model and, when ``judges_preset`` is given, the evaluation judges.

    concurrent: run the vocoder chain in a worker process beside the backbone chain (one
    thread each). ``on_stage(name, seconds)`` is called as each piece finishes.
    Returns {name: seconds}: wall seconds of every piece; with ``concurrent`` the two
    chains overlap, so the total wall time is ``seconds["total"]``, not their sum.
    """
    from aqaa_ref.data import build_corpus
    from aqaa_ref.tokenizer import load_or_train_dual
    from aqaa_ref.training.recipe import STAGES, Assets, run_stage

    t_start = time.perf_counter()
    seconds: dict[str, float] = {}

    def done(name, t0):
        seconds[name] = time.perf_counter() - t0
        if on_stage:
            on_stage(name, seconds[name])

    t0 = time.perf_counter()
    corpus = build_corpus(recipe.corpus, progress=progress)
    done("corpus", t0)
    t0 = time.perf_counter()
    load_or_train_dual(corpus, recipe.tokenizer, progress=progress)
    done("tokenizer", t0)

    side: Future | None = None
    pool = None
    if concurrent:
        # spawn, not fork: a forked child would inherit this process's OpenMP thread pool
        pool = ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("spawn"))
        side = pool.submit(train_side_chain, recipe, judges_preset, False, 1)
        if progress:
            print("[train] flow vocoder, mel-to-wave and judges: training in a worker process beside the backbone")
    try:
        t0 = time.perf_counter()
        with torch_threads(1 if side else torch.get_num_threads()):
            assets = Assets(recipe, progress)
        done("tokenize + text BPE", t0)
        full = torch.get_num_threads()
        for stage in STAGES:
            t0 = time.perf_counter()
            with torch_threads(1 if side is not None and not side.done() else full):
                run_stage(stage, assets, progress)
            done(stage, t0)
        if side is None:
            for name, secs in train_side_chain(recipe, judges_preset, progress).items():
                seconds[name] = secs
                if on_stage:
                    on_stage(name, secs)
        else:
            for name, secs in side.result().items():   # re-raises the worker's error, if any
                seconds[name] = secs
                if on_stage:
                    on_stage(f"{name} (beside the backbone)", secs)
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    seconds["total"] = time.perf_counter() - t_start
    return seconds

"""The demo's questions answered and scored: the 20 shipped questions of ``data_samples/``.

One function serves ``python -m aqaa_ref demo``, ``benchmarks/bench_shipped.py`` and the
quality regression test of the shipped checkpoints, so all three count the same way:
the text channel is right when it equals the expected answer (case, commas and spaces aside),
the answer audio is heard right when the independent recognizer hears the expected answer
in it (:func:`aqaa_ref.evaluation.judges.sample_judge`).
"""
from __future__ import annotations

import time
from pathlib import Path

from aqaa_ref.data.samples import load_samples
from aqaa_ref.inference.generation import same_answer


def answer_samples(aqaa, judge=None, out: Path | None = None, samples=None, on_answer=None) -> list[dict]:
    """Answer every sample question; returns one row per question.

    judge: ``judge(wav, sample) -> bool`` or None (no audio verdict); out: a folder for the
    answer WAVs (``aNN_....wav``); on_answer(row): called after each answer (the demo prints).
    Row: sample, answer (an :class:`~aqaa_ref.inference.pipeline.Answer`), path, text_ok,
    heard (bool or None), seconds (wall time of this answer, judging excluded), at (seconds
    since the call when its file was on disk).
    """
    t_start = time.perf_counter()
    rows = []
    for s in samples if samples is not None else load_samples():
        t0 = time.perf_counter()
        ans = aqaa.answer(s["path"], instruction=s.get("instruction"))
        path = ans.save(Path(out) / s["file"].replace("q", "a", 1)) if out is not None else None
        row = dict(sample=s, answer=ans, path=path, text_ok=same_answer(ans.text, s["answer"]),
                   seconds=time.perf_counter() - t0, at=time.perf_counter() - t_start)
        row["heard"] = bool(judge(ans.wav, s)) if judge is not None else None
        rows.append(row)
        if on_answer:
            on_answer(row)
    return rows


def summary(rows: list[dict]) -> dict:
    """Counts of a run of :func:`answer_samples`: n, text_ok, heard (None without a judge), ids per question."""
    heard = [r["heard"] for r in rows]
    return dict(n=len(rows), text_ok=sum(r["text_ok"] for r in rows),
                heard=None if any(h is None for h in heard) else sum(heard),
                texts={r["sample"]["file"]: r["answer"].text for r in rows})

"""The shipped example questions in ``data_samples/``: how they are chosen and (re)made.

They are test-split items of the toy corpus (never trained on), one per family and test
condition where it exists, re-synthesised from their recorded settings, so regenerating
them needs no corpus on disk::

    python -m aqaa_ref data samples      # rewrites data_samples/
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from aqaa_ref.audio import resample, save_audio
from aqaa_ref.cache import atomic_write_text
from aqaa_ref.data import CorpusConfig, plan_items
from aqaa_ref.data.corpus import CONDITIONS

SAMPLES_DIR = Path(__file__).resolve().parents[2] / "data_samples"
SAMPLE_RATE = 16_000


def choose_items(cfg: CorpusConfig | None = None):
    """Test items of the toy corpus, chosen deterministically: logical reasoning under every
    test condition; every other family with a seen and the unseen voice; one question in
    each of Mandarin, Cantonese and Japanese; one multi-segment (style-switching) answer."""
    items = [it for it in plan_items(cfg or CorpusConfig.from_preset("toy")) if it.split == "test"]
    chosen, taken = [], set()
    for it in items:
        wanted = CONDITIONS if it.family == "logical_reasoning" else ("seen", "unseen_voice")
        if it.condition in wanted and (it.family, it.condition) not in taken:
            taken.add((it.family, it.condition))
            chosen.append(it)
    for lang in ("cmn", "yue", "ja"):
        extra = next((it for it in items if it.question.language == lang and it not in chosen), None)
        if extra is not None:
            chosen.append(extra)
    multi = next((it for it in items if it.is_multi_segment and it not in chosen), None)
    if multi is not None:
        chosen.append(multi)
    return chosen


def write_samples(out: Path = SAMPLES_DIR) -> Path:
    """Synthesize the chosen questions into ``out`` with a ``manifest.jsonl``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for n, it in enumerate(choose_items()):
        wav, sr, phonemes = it.question.synthesize()
        name = f"q{n:02d}_{it.family}_{it.question.language}_{it.condition}.wav"
        save_audio(out / name, resample(torch.from_numpy(wav), sr, SAMPLE_RATE), SAMPLE_RATE)
        rows.append(dict(file=name, id=it.id, family=it.family, task=it.task, condition=it.condition,
                         language=it.question.language, question=it.question.text, instruction=it.instruction,
                         voice=it.question.voice, rate=it.question.rate, pitch=it.question.pitch,
                         pitch_range=it.question.pitch_range, phonemes=phonemes,
                         answer=it.answer_text, answer_language=it.language, answer_style=it.style))
    atomic_write_text(out / "manifest.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return out


def load_samples(root: Path = SAMPLES_DIR) -> list[dict]:
    """The manifest rows, each with ``path`` set to the clip's absolute path."""
    rows = [json.loads(line) for line in (Path(root) / "manifest.jsonl").read_text().splitlines() if line.strip()]
    for r in rows:
        r["path"] = str(Path(root) / r["file"])
    return rows

"""Where a spoken answer is lost: every test answer followed down the chain, stage by stage.

The model's answer passes three stages before a listener hears it, and each can lose it::

    question audio ──backbone──▶ text channel ──▶ answer audio tokens ──vocoder──▶ answer audio
                                 understood        tokens_right                     heard_right

=============== ==============================================================================
understood      the text channel is the expected answer (``same_answer``: case, commas, spaces)
tokens_right    the answer's linguistic tokens say it: read back by the tokenizer's own CTC
                head (on each token's centroid, :meth:`LinguisticTokenizer.read_codes`), they
                match the expected phonemes within the judge's PER threshold (as eSpeak wrote
                them, or as the same head reads the reference tokens)
heard_right     the vocoded answer is judged correct by the independent recognizer
                (:func:`aqaa_ref.evaluation.scoring.judge_answer`'s ``correct``)
=============== ==============================================================================

The waterfall counts answers that survive *every stage so far* (understood, then understood
and tokens_right, then all three), so the drop between two rows is what that stage loses.
Beside it, the ceilings of the stages after the backbone, measured on the reference:

=============== ==============================================================================
ref_tokens      the reference answer's tokens read back by the CTC head (the reading's ceiling)
ref_vocoded     the reference tokens vocoded and heard right (the vocoder's ceiling)
copy_synthesis  the reference audio's own mel through the mel-to-wave model, heard right (the
                floor of everything after the flow: the mel-to-wave model and the judge)
ref_audio       the reference audio heard right (the judge's ceiling)
=============== ==============================================================================

    >>> records = answer_records(aqaa, items, assets.table)
    >>> rows = waterfall(aqaa, records, assets.table, judges, assets.corpus)
    >>> print(waterfall_table(rows, by="condition"))
"""
from __future__ import annotations

import math

import torch
from tqdm.auto import tqdm

from aqaa_ref.audio import peak_normalize
from aqaa_ref.evaluation.scoring import SR, AnswerRecord, correctness, hear, judge_answer
from aqaa_ref.formats.id_layout import deinterleave_2_3
from aqaa_ref.formats.parse import parse_answer
from aqaa_ref.inference.generation import same_answer
from aqaa_ref.metrics import per
from aqaa_ref.vocoder import mel_frames, to_vocoder_codes

#: the chain's stages, in order, and the ceilings reported beside them
STAGES = ("understood", "tokens_right", "heard_right")
CEILINGS = ("ref_tokens", "ref_vocoded", "copy_synthesis", "ref_audio")


def _linguistic_codes(ids: list[int], vocab) -> list[int]:
    """LLSSS backbone ids -> the linguistic codes (0..n_linguistic-1) of their whole groups."""
    lin, _ = deinterleave_2_3(list(ids))
    return [i - vocab.linguistic_offset for i in lin]


@torch.no_grad()
def waterfall(aqaa, records, table, judges, corpus, scores=None, progress: bool = False) -> list[dict]:
    """One row per answer: its stages and ceilings (0/1 each), the PERs behind them, and its
    item's family, condition and language. ``records``: the model's answers as
    :class:`AnswerRecord`s with their generated ``ids`` (:func:`answer_records` gives them);
    ``scores``: their :func:`judge_answer` dicts, if already computed (else judged here)."""
    if scores is not None and len(scores) != len(records):
        raise ValueError(f"got {len(scores)} scores for {len(records)} answers")
    if any(r.ids is None for r in records):
        raise ValueError("the waterfall needs each answer's generated ids (AnswerRecord.ids); "
                         "answer_records() fills them")
    vocab, lt, th = aqaa.vocab, aqaa.dual.linguistic, judges.cfg.correct_threshold
    rows = []
    for k, rec in enumerate(tqdm(records, desc="waterfall", disable=not progress)):
        it = rec.item
        ref = judges.reference(it, corpus)
        ref_ids = [t for r in it.answer_audio for t in table.ids(r.path)]
        ref_reading = lt.read_codes(_linguistic_codes(ref_ids, vocab))
        ref_token_per = per(ref["tokens"], ref_reading)
        gen_ids = parse_answer(rec.ids, vocab, aqaa.special).aligned_audio()
        gen_reading = lt.read_codes(_linguistic_codes(gen_ids, vocab))
        # as correctness() does for the judge: the eSpeak phonemes, or the reading of the reference
        token_per = min(per(ref["tokens"], gen_reading), per(ref_reading, gen_reading) if ref_reading else math.inf)
        heard = scores[k] if scores is not None else judge_answer(rec, judges, corpus)
        ref_wav = corpus.answer_wav(it, SR)
        vocoded = aqaa.vocoder.decode(to_vocoder_codes(ref_ids, vocab))
        copy = aqaa.vocoder.mel2wav(mel_frames(peak_normalize(ref_wav), aqaa.vocoder.flow.cfg.mel)).float()
        rows.append(dict(
            id=it.id, family=it.family, condition=it.condition, language=it.language,
            understood=float(same_answer(rec.text, it.answer_text)),
            tokens_right=float(token_per <= th), heard_right=heard["correct"],
            ref_tokens=float(ref_token_per <= th),
            ref_vocoded=hear(vocoded, it, judges, corpus)[1], copy_synthesis=hear(copy, it, judges, corpus)[1],
            ref_audio=correctness(ref, ref["hyp"], th),
            token_per=token_per, heard_per=heard["per"], ref_token_per=ref_token_per))
    return rows


def summarize(rows: list[dict], by: str = "condition") -> dict:
    """{group: {"n", the cumulative stages (survived every stage so far), the ceilings}} + "all"."""
    groups: dict = {}
    for r in rows:
        groups.setdefault(r[by], []).append(r)
    groups = {**dict(sorted(groups.items())), "all": rows}
    out = {}
    for g, rs in groups.items():
        n = max(1, len(rs))
        survived = [1.0] * len(rs)
        row = {"n": len(rs)}
        for stage in STAGES:
            survived = [s * r[stage] for s, r in zip(survived, rs)]
            row[stage] = sum(survived) / n
        row.update({c: sum(r[c] for r in rs) / n for c in CEILINGS})
        out[g] = row
    return out


def waterfall_table(rows: list[dict], by: str = "condition") -> str:
    """The waterfall as text: one line per group; stage columns are cumulative fractions."""
    table = summarize(rows, by)
    cols = (*STAGES, *CEILINGS)
    width = max(len(by), *map(len, table))
    lines = [f"{by:<{width}}  {'n':>4}  " + "  ".join(f"{c:>14}" for c in cols)]
    for g, r in table.items():
        lines.append(f"{g:<{width}}  {r['n']:>4}  " + "  ".join(f"{r[c]:>14.3f}" for c in cols))
    return "\n".join(lines)


@torch.no_grad()
def vocoder_ceiling(vocoder, items, table, judges, corpus, vocab, temperature: float | None = None,
                    progress: bool = False) -> list[dict]:
    """The vocoder alone (issue 14, item 2): each item's *reference* answer tokens vocoded and
    judged as a model's answer would be, beside copy synthesis (the reference mel through the
    mel-to-wave model: the floor a token vocoder can reach with this mel-to-wave model).

    Returns one dict per item: correct, per, f0_ratio, f0_ok, voice_ok of the vocoded tokens;
    copy_correct, copy_per of copy synthesis; family, condition, language."""
    rows = []
    for it in tqdm(items, desc="vocoder ceiling", disable=not progress):
        ids = [t for r in it.answer_audio for t in table.ids(r.path)]
        wav = vocoder.decode(to_vocoder_codes(ids, vocab), temperature=temperature).float()
        s = judge_answer(AnswerRecord(it, wav), judges, corpus)
        copy = vocoder.mel2wav(mel_frames(peak_normalize(corpus.answer_wav(it, SR)), vocoder.flow.cfg.mel)).float()
        hyp, copy_ok = hear(copy, it, judges, corpus)
        rows.append(dict(id=it.id, family=it.family, condition=it.condition, language=it.language,
                         correct=s["correct"], per=s["per"], f0_ratio=s["f0_ratio"], f0_ok=s["f0_ok"],
                         voice_ok=s["voice_ok"], copy_correct=copy_ok,
                         copy_per=per(judges.reference(it, corpus)["tokens"], hyp)))
    return rows


def ceiling_summary(rows: list[dict], by: str = "condition") -> dict:
    """{group: means of every number in the rows, and n} for each value of ``by``, plus "all"."""
    keys = ("correct", "per", "f0_ok", "voice_ok", "copy_correct", "copy_per")
    groups: dict = {"all": rows}
    for r in rows:
        groups.setdefault(r[by], []).append(r)
    return {g: {"n": len(rs), **{k: sum(r[k] for r in rs) / len(rs) for k in keys}} for g, rs in groups.items() if rs}

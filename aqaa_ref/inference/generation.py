"""Answering with the backbone: constrained, KV-cached, batched generation, and its scores.

``generate_answers`` left-pads a batch of prompts (all ending in ``<|BOT|>assistant\\n``)
so they share one prompt length, and runs ``model.generate`` greedily with the
:class:`~aqaa_ref.formats.constrained.FormatLogitsProcessor`: every answer is a well-formed text /
audio interleave of the chosen format. ``parse_answer`` then splits it into text and the
LLSSS audio stream.

``score_answers`` compares generated answers with the corpus references:

* **text accuracy**: the decoded text channel equals the reference answer text
  (whitespace and case normalised);
* **audio token accuracy**: position-wise agreement of the generated LLSSS stream with the
  reference rendering's tokens, over the longer of the two (a missing or extra token
  counts as wrong). It measures whether the model reproduces the *reference rendering*
  (voice, rate, pitch), not merely some audio.

``score_memoised`` wraps generation and scoring with an on-disk memo keyed by the model's
weights and the items, so the notebooks generate each model's answers once; ``by_condition``
summarises scores overall and per test condition (seen, unseen_voice, ...).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import torch
from transformers import LogitsProcessorList

from aqaa_ref.cache import atomic_write_json, cache_dir
from aqaa_ref.data import strided
from aqaa_ref.formats.constrained import FormatLogitsProcessor
from aqaa_ref.formats.parse import ParsedAnswer, parse_answer
from aqaa_ref.formats.text_tokenizer import decode_text

if TYPE_CHECKING:                 # only an annotation: importing the recipe would load every model's code
    from aqaa_ref.training.recipe import Assets


@torch.no_grad()
def generate_answers(model, builder, prompts: list[list[int]], max_new_tokens: int = 256,
                     batch_size: int = 32, output: str = "text+audio") -> list[list[int]]:
    """Greedy constrained generation. prompts: id lists -> generated answer ids (no prompt)."""
    model.eval()
    pad = builder.special.pad
    out = []
    for i in range(0, len(prompts), batch_size):
        chunk = prompts[i:i + batch_size]
        T = max(len(p) for p in chunk)
        ids = torch.tensor([[pad] * (T - len(p)) + p for p in chunk])
        mask = torch.tensor([[0] * (T - len(p)) + [1] * len(p) for p in chunk])
        procs = LogitsProcessorList([answer_processor(builder, T, output)])
        gen = model.generate(input_ids=ids, attention_mask=mask, logits_processor=procs, do_sample=False,
                             max_new_tokens=max_new_tokens, eos_token_id=builder.special.eot,
                             pad_token_id=pad, use_cache=True)
        for row in gen[:, T:].tolist():
            end = row.index(builder.special.eot) + 1 if builder.special.eot in row else len(row)
            out.append(row[:end])
    return out


def answer_processor(builder, prompt_length: int, output: str = "text+audio"):
    """The logits processor every answer is generated under: the builder's format for spoken
    answers (``output="text+audio"``), text ids only otherwise; the tokenizer's
    ``<|reserved_k|>`` padding ids are never emitted."""
    reserved = [i for i in range(builder.vocab.text_vocab_size)
                if builder.tok.convert_ids_to_tokens(i).startswith("<|reserved_")]
    if output == "text+audio":
        return FormatLogitsProcessor(builder.fmt, builder.vocab, prompt_length, builder.special, banned_text_ids=reserved)
    return _TextOnly(builder.vocab, builder.special, reserved)


class _TextOnly:
    """Mask audio ids, audio markers and reserved ids: for ``output="text"`` answers."""

    def __init__(self, vocab, special, banned):
        self.bad = torch.zeros(vocab.size, dtype=torch.bool)
        self.bad[vocab.text_vocab_size:] = True
        for t in (special.audio_start, special.audio_end, special.bos, special.bot, special.unk, *banned):
            self.bad[t] = True

    def __call__(self, input_ids, scores):
        return scores.masked_fill(self.bad[: scores.shape[1]].to(scores.device), float("-inf"))


def normalize_answer(s: str) -> str:
    """Lower case, commas as spaces, single spaces: what two answers must share to be the same."""
    return " ".join(s.lower().replace(",", " ").split())


def same_answer(a: str, b: str) -> bool:
    """Two text answers are the same up to case, commas and whitespace."""
    return normalize_answer(a) == normalize_answer(b)


@dataclass
class AnswerScore:
    item_id: str
    text: str
    text_correct: bool
    audio_token_accuracy: float
    well_formed: bool     # ended with <|EOT|> and parsed with no issue
    ended: bool           # False: ran out of max_new_tokens (a well-formed prefix)


def score_answers(builder, items, answers: list[list[int]]) -> list[AnswerScore]:
    """Compare generated answers (ids) with each item's reference text and rendering."""
    out = []
    for it, ans in zip(items, answers):
        p: ParsedAnswer = parse_answer(ans, builder.vocab, builder.special)
        text = decode_text(builder.tok, p.text_ids)
        ref = [t for r in it.answer_audio for t in builder.table.ids(r.path)]
        gen = p.aligned_audio()
        n = max(len(ref), len(gen), 1)
        acc = sum(a == b for a, b in zip(ref, gen)) / n
        out.append(AnswerScore(it.id, text, same_answer(text, it.answer_text), acc, not p.issues and p.ended, p.ended))
    return out


def answer_items(model, builder, items, output: str = "text+audio", batch_size: int = 32) -> list[list[int]]:
    """Generate an answer for each corpus item from its question audio (and text instruction)."""
    prompts = [builder.item_prompt(it, output) for it in items]
    return generate_answers(model, builder, prompts, batch_size=batch_size, output=output)


def summarize(scores: list[AnswerScore]) -> dict:
    n = max(1, len(scores))
    return {"n": len(scores), "text_accuracy": sum(s.text_correct for s in scores) / n,
            "audio_token_accuracy": sum(s.audio_token_accuracy for s in scores) / n,
            "well_formed": sum(s.well_formed for s in scores) / n, "ended": sum(s.ended for s in scores) / n}


def by_condition(scores: list[AnswerScore], items) -> dict:
    """{"all": summary, <condition>: summary, ...}: :func:`summarize` overall and per test condition
    (scores[i] belongs to items[i])."""
    res = {"all": summarize(scores)}
    for cond in sorted({it.condition for it in items}):
        res[cond] = summarize([s for s, it in zip(scores, items) if it.condition == cond])
    return res


def weights_key(model) -> str:
    """A hash of the weights (names and raw bytes): the same model gives the same key in every process."""
    h = hashlib.sha1()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


def _answers_key(model, builder, items) -> str:
    """The memo key of a model's answers to items: its weights, the answer format, the item ids."""
    return hashlib.sha1((weights_key(model) + builder.fmt.name + ",".join(it.id for it in items)).encode()).hexdigest()[:20]


def answers_memoised(model, builder, items) -> list[list[int]]:
    """:func:`answer_items` (greedy, format-constrained), memoised on disk under
    ``cache_dir()/answers/<key>.json``, the key hashing the weights, the format and the item ids:
    the same model asked the same questions again (another DPO variant built on the same SFT-1's
    answers) reads them back instead of generating."""
    key = _answers_key(model, builder, items)
    path = cache_dir() / "answers" / f"{key}.json"
    if path.exists():
        return json.loads(path.read_text())
    answers = answer_items(model, builder, items)
    atomic_write_json(path, answers)
    return answers


def score_memoised(model, builder, items, memo: bool = True) -> list[AnswerScore]:
    """Greedy constrained answers to ``items``, scored by :func:`score_answers`, memoised on disk.

    Generation is the slow part on CPU, so the scores are kept in
    ``cache_dir()/notebook_scores/<key>.json``, the key hashing the weights, the answer format and
    the item ids: a second call with the same model and items reads the file. ``memo=False``
    always generates (and refreshes the file)."""
    key = _answers_key(model, builder, items)
    path = cache_dir() / "notebook_scores" / f"{key}.json"
    if memo and path.exists():
        return [AnswerScore(**d) for d in json.loads(path.read_text())]
    scores = score_answers(builder, items, answer_items(model, builder, items))
    atomic_write_json(path, [asdict(s) for s in scores])
    return scores


def evaluate_stages(assets: Assets, stages=("sft1", "sft2", "dpo", "merge"), split: str = "test",
                    limit: int | None = None, batch_size: int = 32) -> dict:
    """Held-out scores per stage: text accuracy, audio-token accuracy, well-formedness, by condition.

    ``limit``: score an evenly strided subset of that size (the split is ordered by family,
    so a stride covers every family and condition; the first N would not)."""
    items = strided(assets.corpus.split(split), limit)
    out = {}
    for stage in stages:
        model = assets.load_stage(stage)
        scores = score_answers(assets.builder, items, answer_items(model, assets.builder, items, batch_size=batch_size))
        out[stage] = by_condition(scores, items)
    return out

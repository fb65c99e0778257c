"""Answering with the backbone: constrained, KV-cached, batched generation, and its scores.

``generate_answers`` left-pads a batch of prompts (all ending in ``<|BOT|>assistant\\n``)
so they share one prompt length, and runs ``model.generate`` greedily with the
:class:`~aqaa_ref.constrained.FormatLogitsProcessor`: every answer is a well-formed text /
audio interleave of the chosen format. ``parse_answer`` then splits it into text and the
LLSSS audio stream.

``score_answers`` compares generated answers with the corpus references:

* **text accuracy**: the decoded text channel equals the reference answer text
  (whitespace and case normalised);
* **audio token accuracy**: position-wise agreement of the generated LLSSS stream with the
  reference rendering's tokens, over the longer of the two (a missing or extra token
  counts as wrong). It measures whether the model reproduces the *reference rendering*
  (voice, rate, pitch), not merely some audio.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import LogitsProcessorList

from .constrained import FormatLogitsProcessor
from .interleave import ParsedAnswer, parse_answer
from .text_tokenizer import decode_text


@torch.no_grad()
def generate_answers(model, builder, prompts: list[list[int]], max_new_tokens: int = 256,
                     batch_size: int = 32, output: str = "text+audio") -> list[list[int]]:
    """Greedy constrained generation. prompts: id lists -> generated answer ids (no prompt)."""
    model.eval()
    fmt = builder.fmt if output == "text+audio" else None
    pad = builder.special.pad
    reserved = [i for i in range(builder.vocab.text_vocab_size)
                if builder.tok.convert_ids_to_tokens(i).startswith("<|reserved_")]
    out = []
    for i in range(0, len(prompts), batch_size):
        chunk = prompts[i:i + batch_size]
        T = max(len(p) for p in chunk)
        ids = torch.tensor([[pad] * (T - len(p)) + p for p in chunk])
        mask = torch.tensor([[0] * (T - len(p)) + [1] * len(p) for p in chunk])
        procs = LogitsProcessorList()
        if fmt is not None:
            procs.append(FormatLogitsProcessor(fmt, builder.vocab, T, builder.special, banned_text_ids=reserved))
        else:  # text answers: forbid audio ids and markers
            procs.append(_TextOnly(builder.vocab, builder.special, reserved))
        gen = model.generate(input_ids=ids, attention_mask=mask, logits_processor=procs, do_sample=False,
                             max_new_tokens=max_new_tokens, eos_token_id=builder.special.eot,
                             pad_token_id=pad, use_cache=True)
        for row in gen[:, T:].tolist():
            end = row.index(builder.special.eot) + 1 if builder.special.eot in row else len(row)
            out.append(row[:end])
    return out


class _TextOnly:
    """Mask audio ids, audio markers and reserved ids: for ``output="text"`` answers."""

    def __init__(self, vocab, special, banned):
        self.bad = torch.zeros(vocab.size, dtype=torch.bool)
        self.bad[vocab.text_vocab_size:] = True
        for t in (special.audio_start, special.audio_end, special.bos, special.bot, special.unk, *banned):
            self.bad[t] = True

    def __call__(self, input_ids, scores):
        return scores.masked_fill(self.bad[: scores.shape[1]].to(scores.device), float("-inf"))


def _norm(s: str) -> str:
    return " ".join(s.lower().replace(",", " ").split())


def same_answer(a: str, b: str) -> bool:
    """Two text answers are the same up to case, commas and whitespace."""
    return _norm(a) == _norm(b)


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
        out.append(AnswerScore(it.id, text, _norm(text) == _norm(it.answer_text), acc, not p.issues and p.ended, p.ended))
    return out


def answer_items(model, builder, items, output: str = "text+audio", batch_size: int = 32) -> list[list[int]]:
    """Generate an answer for each corpus item from its question audio (and text instruction)."""
    prompts = [builder.prompt(builder.table.ids(it.question_audio.path), it.instruction, output) for it in items]
    return generate_answers(model, builder, prompts, batch_size=batch_size, output=output)


def summarize(scores: list[AnswerScore]) -> dict:
    n = max(1, len(scores))
    return {"n": len(scores), "text_accuracy": sum(s.text_correct for s in scores) / n,
            "audio_token_accuracy": sum(s.audio_token_accuracy for s in scores) / n,
            "well_formed": sum(s.well_formed for s in scores) / n, "ended": sum(s.ended for s in scores) / n}

"""Constrained decoding: only let the model emit what the answer format allows next.

``FormatSchedule`` is the format as a state machine over token *kinds*: text, linguistic
(L), semantic (S), <audio_start>, <audio_end>, <|EOT|>. It accepts every sequence
``aqaa_ref.formats.answer_format`` builds (single answers and all three multi-segment
concatenations: the property tests check this) and a few more (see "short span"), and
at every step it lists the kinds that keep the sequence well formed:

    text phase   text while fewer than X in this round; <audio_start> any time (a chunk
                 shorter than X ends the text, so its span is the final, unbounded one);
                 <|EOT|> at a round boundary after a full span (both streams ran out)
    audio span   L L S S S by position in the audio stream; <audio_end> forced once a
                 regular span holds Y; allowed early only at a group boundary (and, with
                 ``nonempty_spans``, never before the answer's first group: a spoken answer
                 says something; the empty spans of rounds after the audio ran out stay legal)
    short span   closed with fewer than Y: next comes text (next round), <|EOT|> (all
                 done) or <audio_start>: a segment boundary inside the round, or a next
                 segment with no text. The two look alike, so that span is let run to
                 any whole group (or close at Y), like a final span.
    final span   any number of whole groups, then <audio_end>, then <|EOT|> (or a new
                 span / a new segment's text)

``FormatLogitsProcessor`` turns those kinds into a vocabulary mask for ``generate``, so a
KV-cached generation is always a prefix of a well-formed answer (and well formed when it
stops on <|EOT|>).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import LogitsProcessor

from aqaa_ref.formats.answer_format import Format, SpecialIds
from aqaa_ref.formats.id_layout import AudioVocab

TEXT, LING, SEM, START, END, EOS = "text", "linguistic", "semantic", "audio_start", "audio_end", "eos"


@dataclass
class FormatSchedule:
    """Where we are in the answer. ``allowed()`` -> kinds; ``step(kind)`` -> advance."""
    fmt: Format
    allow_new_segment: bool = True
    phase: str = "text"        # text | audio | short_closed | final_closed | done
    text_count: int = 0        # text tokens in this round's chunk
    span_count: int = 0        # audio tokens in this round (over its sub-spans)
    audio_pos: int = 0         # audio tokens so far in the answer (LLSSS position)
    final: bool = False        # this round's span holds all remaining audio
    rounds: int = 0            # completed full rounds
    continued: bool = False    # this span reopened right after a short one
    # generation sets this: the first span must hold a group (an answer with no audio is
    # silence). The builder writes an empty <audio_start><audio_end> for an answer without
    # audio, so checking accepts it.
    nonempty_spans: bool = False

    def _at_group_boundary(self) -> bool:
        return self.audio_pos % self.fmt.group_size == 0

    def allowed(self) -> set[str]:
        X, Y = self.fmt.text_per_chunk, self.fmt.audio_per_chunk
        if self.phase == "done":
            return {EOS}
        if self.phase == "final_closed":
            new_segment = {TEXT} if self.allow_new_segment and X != 0 else set()
            return {START, EOS} | new_segment
        # the answer may end only after a whole LLSSS group (formats whose Y is not a multiple
        # of the group size, e.g. 10:7, can close a round in the middle of one)
        end = {EOS} if self._at_group_boundary() else set()
        if self.phase == "short_closed":
            return {START, TEXT} | end
        if self.phase == "text":
            out = {START}
            if X is None or self.text_count < X:
                out.add(TEXT)
            if self.text_count == 0 and self.rounds > 0:
                out |= end
            return out
        # audio phase
        if not self.final and Y is not None and self.span_count == Y:
            return {END}
        kind = LING if self.audio_pos % self.fmt.group_size < self.fmt.group[0] else SEM
        at_y = self.continued and Y is not None and self.span_count == Y
        may_close = self._at_group_boundary() and (self.audio_pos > 0 or not self.nonempty_spans)
        return {kind, END} if may_close or at_y else {kind}

    def step(self, kind: str) -> None:
        """Advance by one token of ``kind``; ValueError if the format does not allow it."""
        if kind not in self.allowed():
            raise ValueError(f"{kind} not allowed in phase {self.phase} (allowed: {sorted(self.allowed())})")
        X, Y = self.fmt.text_per_chunk, self.fmt.audio_per_chunk
        if kind == EOS:
            self.phase = "done"
        elif kind == TEXT:
            if self.phase in ("short_closed", "final_closed"):  # next round / next segment
                self.text_count, self.span_count, self.final = 0, 0, False
            self.phase = "text"
            self.text_count += 1
        elif kind == START:
            if self.phase == "text":                      # close this round's text chunk
                self.final = X is None or X == 0 or self.text_count < X
                self.span_count, self.continued = 0, False
            elif self.phase == "short_closed":            # segment boundary: unbounded
                self.final, self.continued = True, True
            self.phase = "audio"                          # from *_closed: a sub-span goes on
        elif kind in (LING, SEM):
            self.span_count += 1
            self.audio_pos += 1
        elif kind == END:
            if self.final:
                self.phase = "final_closed"
            elif Y is not None and self.span_count == Y:
                self.phase, self.text_count = "text", 0
                self.rounds += 1
            else:
                self.phase = "short_closed"


def token_kind(t: int, vocab: AudioVocab, special: SpecialIds) -> str | None:
    """Kind of one id, or None for ids an answer never holds (pad, bos, <|BOT|>, extra)."""
    if t == special.eot:
        return EOS
    if t == special.audio_start:
        return START
    if t == special.audio_end:
        return END
    if vocab.is_linguistic(t):
        return LING
    if vocab.is_semantic(t):
        return SEM
    if 0 <= t < vocab.text_vocab_size and t not in special.all():
        return TEXT
    return None


def check_well_formed(ids, fmt: Format, vocab: AudioVocab, special: SpecialIds = SpecialIds(),
                      require_end: bool = True) -> list[str]:
    """Problems with an answer body (+ <|EOT|>) under ``fmt``; [] = well formed.
    With ``require_end=False`` a prefix of a well-formed answer also passes."""
    seq = ids.tolist() if hasattr(ids, "tolist") else list(ids)
    sched = FormatSchedule(fmt)
    for k, t in enumerate(seq):
        if sched.phase == "done":
            if t not in (special.pad, special.eot):
                return [f"pos {k}: id {t} after <|EOT|>"]
            continue
        kind = token_kind(t, vocab, special)
        if kind is None or kind not in sched.allowed():
            return [f"pos {k}: id {t} ({kind}) not allowed in phase {sched.phase}"]
        sched.step(kind)
    if require_end and sched.phase != "done":
        return [f"answer not finished (phase {sched.phase})"]
    return []


class FormatLogitsProcessor(LogitsProcessor):
    """Mask the logits so ``generate`` follows ``fmt``.

    ``prompt_length``: columns of ``input_ids`` that are prompt (the answer starts after
    ``<|BOT|>assistant\\n``; with left padding all rows share it). ``banned_text_ids``:
    text-block ids never to emit (e.g. the tokenizer's <|reserved_k|> padding). The state
    of each row is advanced one token per call; it is rebuilt from scratch whenever the
    rows do not extend the previous call's (beam reordering, a new generate call). The first
    audio span the model opens holds at least one LLSSS group (``nonempty_spans``): an
    undertrained model would otherwise answer ``<audio_start><audio_end>``, a spoken answer
    with no sound.
    """

    def __init__(self, fmt: Format, vocab: AudioVocab, prompt_length: int,
                 special: SpecialIds = SpecialIds(), banned_text_ids=(), allow_new_segment: bool = True):
        self.fmt, self.vocab, self.special = fmt, vocab, special
        self.prompt_length, self.allow_new_segment = prompt_length, allow_new_segment
        V = vocab.size
        ids = torch.arange(V)
        text = vocab.is_text(ids)
        for t in list(special.all()) + list(banned_text_ids):
            text[t] = False
        one = lambda i: ids == i  # noqa: E731
        self.kind_masks = {TEXT: text, LING: vocab.is_linguistic(ids), SEM: vocab.is_semantic(ids),
                           START: one(special.audio_start), END: one(special.audio_end),
                           EOS: one(special.eot)}
        self.done_mask = one(special.eot) | one(special.pad)           # HF pads finished rows
        self._seen: torch.Tensor | None = None
        self._states: list[FormatSchedule] = []

    def _advance(self, sched: FormatSchedule, t: int) -> None:
        if sched.phase == "done":
            return
        kind = token_kind(t, self.vocab, self.special)
        if kind is not None and kind in sched.allowed():
            sched.step(kind)
        else:                       # a token we did not allow (e.g. forced by the caller): finish
            sched.phase = "done"

    def _states_for(self, input_ids: torch.Tensor) -> list[FormatSchedule]:
        prev = self._seen
        if (prev is not None and input_ids.shape[0] == prev.shape[0]
                and input_ids.shape[1] == prev.shape[1] + 1 and torch.equal(input_ids[:, :-1], prev)):
            new_cols = input_ids[:, -1:]
        else:
            self._states = [FormatSchedule(self.fmt, self.allow_new_segment, nonempty_spans=True)
                            for _ in range(input_ids.shape[0])]
            new_cols = input_ids[:, self.prompt_length:]
        for sched, row in zip(self._states, new_cols.tolist()):
            for t in row:
                self._advance(sched, t)
        self._seen = input_ids.clone()
        return self._states

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        """input_ids (B, T), scores (B, V') -> scores with disallowed ids at -inf."""
        masks = self.kind_masks
        allowed = torch.zeros(scores.shape, dtype=torch.bool, device=scores.device)
        V = min(scores.shape[1], self.vocab.size)
        for b, sched in enumerate(self._states_for(input_ids)):
            row = torch.zeros(self.vocab.size, dtype=torch.bool)
            for kind in sched.allowed():
                row |= masks[kind]
            if sched.phase == "done":
                row = self.done_mask
            allowed[b, :V] = row[:V].to(scores.device)
        return scores.masked_fill(~allowed, float("-inf"))

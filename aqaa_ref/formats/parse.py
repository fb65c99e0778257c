"""Reading an answer back: any id sequence -> its text ids and its LLSSS audio stream.

``parse_answer`` inverts ``aqaa_ref.formats.answer_format``'s interleaving (every format and
every multi-segment concatenation) and never raises on content: malformed input is repaired
as its docstring says and each repair is listed in ``ParsedAnswer.issues``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from aqaa_ref.formats.answer_format import SpecialIds
from aqaa_ref.formats.id_layout import GROUP, AudioVocab, interleave_2_3


@dataclass
class Segment:
    kind: str                      # "text" or "audio"
    ids: list[int] = field(default_factory=list)
    closed: bool = True            # audio only: False if its <audio_end> was missing


@dataclass
class ParsedAnswer:
    text_ids: list[int]
    audio_ids: list[int]           # every audio id inside spans, in order (LLSSS if well formed)
    linguistic_ids: list[int]
    semantic_ids: list[int]
    segments: list[Segment]
    issues: list[str]              # empty = well formed
    ended: bool                    # saw <|EOT|>

    def aligned_audio(self, group=GROUP) -> list[int]:
        """Complete LLSSS groups rebuilt from the two streams; an incomplete tail is dropped
        (as Step-Audio does): G = min(len(L) // 2, len(S) // 3)."""
        return interleave_2_3(self.linguistic_ids, self.semantic_ids, group=group)

    def rounds(self, vocab: AudioVocab) -> list[tuple[int, int, int]]:
        """(text, linguistic, semantic) counts per round: a text run + the spans after it."""
        out = []
        for s in self.segments:
            if s.kind == "text" or not out:
                out.append([0, 0, 0])
            if s.kind == "text":
                out[-1][0] += len(s.ids)
            else:
                out[-1][1] += sum(1 for a in s.ids if vocab.is_linguistic(a))
                out[-1][2] += sum(1 for a in s.ids if vocab.is_semantic(a))
        return [tuple(r) for r in out]


def parse_answer(ids, vocab: AudioVocab, special: SpecialIds = SpecialIds(), group=GROUP) -> ParsedAnswer:
    """Any id sequence -> text, linguistic and semantic ids. Never raises on content.

    Reading stops at the first <|EOT|>. Malformed input is repaired as follows and each
    repair is reported in ``issues``:
      - audio id outside a span (in a text slot): dropped;
      - text id inside a span: the span is closed there (missing <audio_end>), text goes on;
      - sequence ends inside a span: the span is kept, marked ``closed=False``;
      - <audio_start> inside a span / <audio_end> outside one: ignored;
      - pad: skipped silently; bos, unk, <|BOT|>, non-integers and ids outside the vocab: dropped;
      - LLSSS order broken or an incomplete last group: reported (``aligned_audio()``
        rebuilds whole groups from the two streams).
    """
    try:
        seq = ids.tolist() if hasattr(ids, "tolist") else list(ids)
    except TypeError:
        return ParsedAnswer([], [], [], [], [], [f"input is not a sequence: {type(ids).__name__}"], False)
    text, audio, segs, issues = [], [], [], []
    in_span, ended = False, False
    for k, raw in enumerate(seq):
        try:
            t = int(raw)
        except (TypeError, ValueError, OverflowError):
            issues.append(f"pos {k}: not an integer id ({raw!r}), dropped")
            continue
        if t == special.eot:
            rest = [x for x in seq[k + 1:] if x != special.pad]
            if rest:
                issues.append(f"pos {k}: {len(rest)} non-pad ids after <|EOT|> ignored")
            ended = True
            break
        if t == special.pad:
            continue
        if t == special.audio_start:
            if in_span:
                issues.append(f"pos {k}: <audio_start> inside a span, ignored")
            else:
                in_span = True
                segs.append(Segment("audio"))
        elif t == special.audio_end:
            if in_span:
                in_span = False
            else:
                issues.append(f"pos {k}: <audio_end> outside a span, ignored")
        elif t in (special.bos, special.unk, special.bot) or not 0 <= t < vocab.audio_end:
            issues.append(f"pos {k}: unexpected id {t}, dropped")
        elif vocab.is_audio(t):
            if in_span:
                segs[-1].ids.append(t)
                audio.append(t)
            else:
                issues.append(f"pos {k}: audio id {t} in a text slot, dropped")
        else:                                              # a text id
            if in_span:
                issues.append(f"pos {k}: text id inside a span, span closed (missing <audio_end>)")
                segs[-1].closed, in_span = False, False
            if not segs or segs[-1].kind != "text":
                segs.append(Segment("text"))
            segs[-1].ids.append(t)
            text.append(t)
    if in_span:
        segs[-1].closed = False
        issues.append("sequence ended inside an audio span (missing <audio_end>)")
    g = sum(group)
    for k, a in enumerate(audio):
        if (k % g < group[0]) != bool(vocab.is_linguistic(a)):
            issues.append(f"audio pos {k}: LLSSS order broken")
            break
    if len(audio) % g:
        issues.append(f"incomplete group: {len(audio) % g} audio ids after the last whole group")
    ling = [a for a in audio if vocab.is_linguistic(a)]
    sem = [a for a in audio if vocab.is_semantic(a)]
    return ParsedAnswer(text, audio, ling, sem, segs, issues, ended)

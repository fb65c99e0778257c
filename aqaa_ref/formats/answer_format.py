"""Answer formats: how text and audio ids share one output sequence (facts §2).

Step-Audio-AQAA answers with text and audio interleaved, text leading, 10 text tokens
then 15 audio tokens (= three LLSSS groups = 6 linguistic + 9 semantic: the 10:6:9
"tri-codebook" view), every audio span wrapped in ``<audio_start>`` ... ``<audio_end>``::

    ratio_10_15:  t t t t t t t t t t [as] L L S S S L L S S S L L S S S [ae] t t ... [ae] <|EOT|>

A ``Format`` is (X text per chunk, Y audio per chunk); the paper's ablation (Table 1):

    audio_only   X = 0     Y = all    [as] audio [ae]                 (the text is dropped)
    text_cot     X = all   Y = all    text [as] audio [ae]
    ratio_X_Y    X         Y          10:15 (best), 3:5, 6:50

When one stream runs out (the paper does not say; our rule, mirrored by the decoder):

- **text runs out first** (the usual case): a text chunk shorter than X (possibly empty)
  marks the end of the text; the span after it holds *all* remaining audio.
- **audio runs out first**: the rounds go on with empty spans ``[as] [ae]`` (2 ids per
  X text ids), so every round keeps the same shape and the decoder needs no extra state.
- both run out together at the end of a round: the answer ends after that round's span.

The audio given to this module is an already-interleaved LLSSS stream (2:3 groups, ids
already offset by ``AudioVocab``), whole groups only. ``aqaa_ref.formats.parse.parse_answer``
inverts everything and reads any id sequence without raising.
"""
from __future__ import annotations

from dataclasses import dataclass

from aqaa_ref.formats.id_layout import GROUP, IGNORE_INDEX, AudioVocab



@dataclass(frozen=True)
class SpecialIds:
    """Ids of the special tokens; defaults = the layout of ``aqaa_ref.formats.text_tokenizer``."""
    pad: int = 0
    bos: int = 1
    unk: int = 2
    eot: int = 3            # <|EOT|> ends a turn and is the eos
    bot: int = 4            # <|BOT|> begins a turn
    audio_start: int = 5
    audio_end: int = 6

    @classmethod
    def from_tokenizer(cls, tok) -> "SpecialIds":
        from aqaa_ref.formats.text_tokenizer import AUDIO_END, AUDIO_START, BOS, BOT, EOT, PAD, UNK
        ids = [tok.convert_tokens_to_ids(t) for t in (PAD, BOS, UNK, EOT, BOT, AUDIO_START, AUDIO_END)]
        return cls(*ids)

    def all(self) -> frozenset[int]:
        return frozenset((self.pad, self.bos, self.unk, self.eot, self.bot, self.audio_start, self.audio_end))


@dataclass(frozen=True)
class Format:
    """X text tokens then Y audio tokens per round. None = "all of it"; X = 0 = no text."""
    name: str
    text_per_chunk: int | None
    audio_per_chunk: int | None
    group: tuple[int, int] = GROUP         # linguistic, semantic tokens per LLSSS group

    def __post_init__(self):
        x, y = self.text_per_chunk, self.audio_per_chunk
        if x is not None and x < 0 or y is not None and y < 1:
            raise ValueError(f"format {self.name}: need text_per_chunk >= 0 and audio_per_chunk >= 1")
        if x == 0 and y is not None:
            raise ValueError(f"format {self.name}: audio-only (text_per_chunk=0) needs audio_per_chunk=None")

    @property
    def group_size(self) -> int:
        return sum(self.group)

    @classmethod
    def ratio(cls, x: int, y: int) -> "Format":
        return cls(f"ratio_{x}_{y}", x, y)

    @classmethod
    def from_tri_codebook(cls, text: int, linguistic: int, semantic: int) -> "Format":
        """10:6:9 -> ratio_10_15 (whole 2+3 groups only)."""
        n = linguistic // 2
        if linguistic != 2 * n or semantic != 3 * n:
            raise ValueError(f"{linguistic}:{semantic} is not a whole number of 2+3 groups")
        return cls.ratio(text, linguistic + semantic)

    def tri_codebook(self) -> tuple[int, int, int] | None:
        """(text, linguistic, semantic) per full round, e.g. (10, 6, 9); None if not whole groups."""
        y, (gl, gs) = self.audio_per_chunk, self.group
        if self.text_per_chunk is None or y is None or y % (gl + gs):
            return None
        n = y // (gl + gs)
        return (self.text_per_chunk, n * gl, n * gs)


FORMATS: dict[str, Format] = {
    "audio_only": Format("audio_only", 0, None),
    "text_cot": Format("text_cot", None, None),
    "ratio_10_15": Format.ratio(10, 15),
    "ratio_3_5": Format.ratio(3, 5),
    "ratio_6_50": Format.ratio(6, 50),
}


def get_format(name: str) -> Format:
    """A paper format by name, or any "ratio_X_Y"."""
    if name in FORMATS:
        return FORMATS[name]
    parts = name.split("_")
    if len(parts) == 3 and parts[0] == "ratio" and parts[1].isdigit() and parts[2].isdigit():
        return Format.ratio(int(parts[1]), int(parts[2]))
    raise ValueError(f"unknown format {name!r}: use {sorted(FORMATS)} or ratio_X_Y")


def check_audio_stream(audio: list[int], vocab: AudioVocab, group=GROUP) -> None:
    """Raise ValueError unless ``audio`` is whole LLSSS groups of in-range ids."""
    g = sum(group)
    if len(audio) % g:
        raise ValueError(f"audio stream has {len(audio)} ids, not whole {group[0]}+{group[1]} groups")
    for k, a in enumerate(audio):
        want_l = k % g < group[0]
        if want_l and not vocab.is_linguistic(a) or not want_l and not vocab.is_semantic(a):
            kind = "linguistic" if want_l else "semantic"
            raise ValueError(f"audio position {k} (id {a}) should be a {kind} id")


def check_text(text: list[int], vocab: AudioVocab, special: SpecialIds) -> None:
    for k, t in enumerate(text):
        if not (0 <= t < vocab.text_vocab_size) or t in special.all():
            raise ValueError(f"text position {k} (id {t}) is not a plain text id")


def interleave_answer(fmt: Format, text: list[int], audio: list[int], vocab: AudioVocab,
                      special: SpecialIds = SpecialIds(), boundaries=()) -> list[int]:
    """One answer body (no <|EOT|>): text ids + LLSSS audio ids -> the format's sequence.

    ``boundaries``: audio positions where a segment ends (marker-preserving concatenation);
    a span crossing one is closed and reopened there: ``... [ae] [as] ...``.
    """
    text, audio = list(text), list(audio)
    check_text(text, vocab, special)
    check_audio_stream(audio, vocab, fmt.group)
    AS, AE, cuts = special.audio_start, special.audio_end, set(boundaries)

    def span(a: int, b: int) -> list[int]:                # audio[a:b] wrapped, split at cuts
        out = [AS]
        for k in range(a, b):
            if k in cuts and k != a:
                out += [AE, AS]
            out.append(audio[k])
        return out + [AE]

    X, Y = fmt.text_per_chunk, fmt.audio_per_chunk
    if X == 0:                                             # audio_only: the text is dropped
        return span(0, len(audio))
    out, i, j = [], 0, 0
    while True:
        n = len(text) - i if X is None else min(X, len(text) - i)
        out += text[i:i + n]
        i += n
        text_over = X is None or n < X                     # a short chunk ends the text
        m = len(audio) - j if (text_over or Y is None) else min(Y, len(audio) - j)
        out += span(j, j + m)
        j += m
        if text_over:                                      # that span held all remaining audio
            break
        if i == len(text) and j == len(audio):             # both ran out together
            break
    return out


def concat_segments(fmt: Format, segments: list[tuple[list[int], list[int]]], mode: str,
                    vocab: AudioVocab, special: SpecialIds = SpecialIds()) -> list[int]:
    """Multi-label speech (emotion/speed switches mid-answer, facts §2 Table 2).

    segments: [(text_ids, audio_ids), ...] in speaking order. Modes:
      "pre_interleaved":    interleave each segment on its own, then concatenate;
      "marker_removal":     concatenate all text and all audio, interleave once (the
                            segment boundaries leave no trace; the paper's model then
                            almost never switches style);
      "marker_preserving":  as marker_removal, but each segment's audio keeps its own
                            <audio_start>/<audio_end>: spans are split at segment
                            boundaries (the paper's best).
    """
    if mode == "pre_interleaved":
        return [t for text, audio in segments for t in interleave_answer(fmt, text, audio, vocab, special)]
    text = [t for s in segments for t in s[0]]
    audio = [a for s in segments for a in s[1]]
    if mode == "marker_removal":
        return interleave_answer(fmt, text, audio, vocab, special)
    if mode == "marker_preserving":
        ends, pos = [], 0
        for _, a in segments[:-1]:
            pos += len(a)
            ends.append(pos)
        return interleave_answer(fmt, text, audio, vocab, special, boundaries=ends)
    raise ValueError(f"mode must be pre_interleaved, marker_removal or marker_preserving, got {mode!r}")


# --------------------------------------------------------------------------- chat template
@dataclass(frozen=True)
class ChatTemplate:
    """``<s><|BOT|>{role}\\n{content}<|EOT|>...``; role_ids: role -> ids of "{role}\\n"."""
    role_ids: dict
    special: SpecialIds = SpecialIds()

    @classmethod
    def from_tokenizer(cls, tok) -> "ChatTemplate":
        roles = {r: tok.encode(r + "\n", add_special_tokens=False) for r in ("system", "human", "assistant")}
        return cls(roles, SpecialIds.from_tokenizer(tok))


def build_chat(template: ChatTemplate, turns: list[tuple[str, list[int]]], train_on: str = "last",
               add_generation_prompt: bool = False) -> tuple[list[int], list[int]]:
    """turns: [(role, content_ids)] -> (input_ids, labels), both length T.

    labels = input_ids on the trained assistant turns' content and closing <|EOT|>
    (train_on "last" or "all" assistant turns), IGNORE_INDEX (-100) elsewhere: the
    prompt, <|BOT|>assistant\\n prefixes and earlier turns are not learned.
    """
    if train_on not in ("last", "all"):
        raise ValueError(f"train_on must be 'last' or 'all', got {train_on!r}")
    sp = template.special
    last = max((k for k, (r, _) in enumerate(turns) if r == "assistant"), default=-1)
    ids, labels = [sp.bos], [IGNORE_INDEX]
    for k, (role, content) in enumerate(turns):
        if role not in template.role_ids:
            raise ValueError(f"role must be one of {sorted(template.role_ids)}, got {role!r}")
        prefix = [sp.bot] + list(template.role_ids[role])
        body = list(content) + [sp.eot]
        trained = role == "assistant" and (train_on == "all" or k == last)
        ids += prefix + body
        labels += [IGNORE_INDEX] * len(prefix) + (body if trained else [IGNORE_INDEX] * len(body))
    if add_generation_prompt:
        prefix = [sp.bot] + list(template.role_ids["assistant"])
        ids += prefix
        labels += [IGNORE_INDEX] * len(prefix)
    return ids, labels


def wrap_audio(audio: list[int], special: SpecialIds = SpecialIds()) -> list[int]:
    """A spoken question as turn content: [as] LLSSS... [ae]."""
    return [special.audio_start, *audio, special.audio_end]

"""From corpus items to the token sequences every training stage reads.

One id space (``AudioVocab``): text ids, then linguistic, then semantic. Audio is the
2:3 interleaved LLSSS stream of the dual tokenizer, computed once per clip and cached
(:func:`tokenize_corpus`). Every example is ``{"input_ids": [...], "labels": [...]}``
with labels = -100 where nothing is learned.

Pre-training (Step-Omni stage 3 mixes continuation : interleaved : ASR : TTS = 1:1:1:1)::

    continuation  <s> [as] LLSSS... [ae] <|EOT|>                 learn everything
    asr           <s> [as] LLSSS... [ae] text <|EOT|>            learn the text
    tts           <s> text [as] LLSSS... [ae] <|EOT|>            learn the audio
    interleaved   <s> text10 [as] audio15 [ae] text10 ... <|EOT|> learn everything

SFT (the chat template; the system turn picks the output)::

    <s><|BOT|>system\\n answer in speech <|EOT|><|BOT|>human\\n [instruction text] [as] question [ae] <|EOT|>
      <|BOT|>assistant\\n  text10 [as] audio15 [ae] ...  <|EOT|>          AQTAA (ratio 10:15 by default)
      <|BOT|>assistant\\n  text <|EOT|>                                  AQTA ("answer in text")

Only the assistant content and its <|EOT|> are learned.
"""
from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from aqaa_ref.cache import atomic_write_json, cache_dir, config_hash
from aqaa_ref.formats.answer_format import (ChatTemplate, Format, SpecialIds, build_chat, concat_segments,
                                            interleave_answer, wrap_audio)
from aqaa_ref.formats.id_layout import IGNORE_INDEX, AudioVocab, interleave_2_3
from aqaa_ref.formats.text_tokenizer import encode_text

#: system prompts that select the answer's output channel
SYSTEM_PROMPTS = {"text+audio": "answer in speech", "text": "answer in text"}
#: the evasive answer the Step-Audio report lists among rejected responses, per language
EVASIONS = {"en": "sorry, I did not hear you", "cmn": "对不起，我没听清", "yue": "對唔住，我聽唔清楚",
            "ja": "すみません、きこえませんでした"}
CONCAT_MODES = ("pre_interleaved", "marker_removal", "marker_preserving")


# ----------------------------------------------------------------------------- audio tokens

class AudioTable:
    """Raw codes per clip: ``path -> (linguistic codes, semantic codes)``; interleaved on demand."""

    def __init__(self, codes: dict, vocab: AudioVocab):
        self.codes, self.vocab = codes, vocab

    def ids(self, path: str) -> list[int]:
        """The clip's interleaved LLSSS ids, offset into the vocab, whole groups only."""
        lc, sc = self.codes[path]
        return interleave_2_3(lc, sc, self.vocab.linguistic_offset, self.vocab.semantic_offset)


def _load_codes(path: Path) -> dict | None:
    """A saved code table (``index.json`` + ``codes.safetensors``) -> {clip: (lc, sc)}; None if incomplete."""
    if not (path / "index.json").exists():
        return None
    index = json.loads((path / "index.json").read_text())
    t = load_file(str(path / "codes.safetensors"))
    lc, sc = t["linguistic"].tolist(), t["semantic"].tolist()
    return {p: (lc[a:b], sc[c:d]) for p, (a, b, c, d) in index.items()}


def _save_codes(path: Path, codes: dict) -> None:
    index, lc, sc = {}, [], []
    for p, (l, s) in codes.items():
        index[p] = (len(lc), len(lc) + len(l), len(sc), len(sc) + len(s))
        lc += l
        sc += s
    path.mkdir(parents=True, exist_ok=True)
    save_file({"linguistic": torch.tensor(lc, dtype=torch.int32), "semantic": torch.tensor(sc, dtype=torch.int32)},
              str(path / "codes.safetensors"))
    atomic_write_json(path / "index.json", index)  # written last: its presence marks a complete table


def _table_key(corpus, dual) -> str:
    source = [dual.source] if getattr(dual, "source", None) else []
    return config_hash(corpus.config, dual.config.linguistic, dual.config.semantic, *source)


def tokenize_corpus(corpus, dual, progress: bool = True) -> AudioTable:
    """Encode every clip of the corpus once (cached beside the tokenizer, keyed by both; a
    shipped tokenizer's codes are keyed by its weights too, ``dual.source``)."""
    path = cache_dir() / "audio_tokens" / f"{corpus.config.name}-{_table_key(corpus, dual)}"
    codes = _load_codes(path)
    if codes is None:
        clips = sorted({r.path for it in corpus.items for r in (it.question_audio, *it.answer_audio)})
        out = dual.encode_batch([corpus.load(p) for p in clips], progress=progress)
        codes = {p: (l.tolist(), s.tolist()) for p, (l, s) in zip(clips, out)}
        _save_codes(path, codes)
    return AudioTable(codes, dual.vocab)


def with_extra_clips(table: AudioTable, dual, corpus, items, progress: bool = True) -> AudioTable:
    """``table`` plus the codes of the items' clips it lacks (supplement items drawn beside the
    corpus: ``data.multi_segment_test_items``, ``data.long_answer_items``). The extra codes are
    cached like the corpus's, keyed by the corpus, the tokenizer and the clips."""
    missing = sorted({r.path for it in items for r in (it.question_audio, *it.answer_audio)} - set(table.codes))
    if not missing:
        return table
    path = cache_dir() / "audio_tokens" / f"{corpus.config.name}-{_table_key(corpus, dual)}-extra-{config_hash(missing)}"
    codes = _load_codes(path)
    if codes is None:
        out = dual.encode_batch([corpus.load(p) for p in missing], progress=progress)
        codes = {p: (lc.tolist(), sc.tolist()) for p, (lc, sc) in zip(missing, out)}
        _save_codes(path, codes)
    return AudioTable({**table.codes, **codes}, table.vocab)


# ----------------------------------------------------------------------------- sequences

@dataclass
class SequenceBuilder:
    """Builds every stage's examples from items, the audio table and the text tokenizer."""

    tok: object                      # PreTrainedTokenizerFast from aqaa_ref.formats.text_tokenizer
    table: AudioTable
    fmt: Format
    concat_mode: str = "marker_preserving"

    def __post_init__(self):
        if self.concat_mode not in CONCAT_MODES:
            raise ValueError(f"concat_mode must be one of {CONCAT_MODES}, got {self.concat_mode!r}")
        self.vocab = self.table.vocab
        self.special = SpecialIds.from_tokenizer(self.tok)
        self.chat = ChatTemplate.from_tokenizer(self.tok)
        self._text_cache: dict = {}

    def text(self, s: str) -> list[int]:
        if s not in self._text_cache:
            self._text_cache[s] = encode_text(self.tok, s)
        return self._text_cache[s]

    # -- the answer -------------------------------------------------------------------
    def segment_texts(self, item) -> list[list[int]]:
        """Text ids per answer segment; later English segments get their leading space."""
        return [self.text((" " if k and s.language == "en" else "") + s.text) for k, s in enumerate(item.answer)]

    def answer_ids(self, item, output: str = "text+audio", answer_audio=None) -> list[int]:
        """The assistant content (no <|EOT|>). ``answer_audio``: per-segment paths (default: the item's)."""
        if output == "text":
            return self.text(item.answer_text)
        paths = [r.path if hasattr(r, "path") else r for r in (answer_audio or item.answer_audio)]
        texts = self.segment_texts(item)
        if len(paths) != len(texts):
            raise ValueError(f"{item.id}: {len(texts)} answer segments but {len(paths)} audio clips")
        segments = [(t, self.table.ids(p)) for t, p in zip(texts, paths)]
        if len(segments) == 1:
            return interleave_answer(self.fmt, *segments[0], self.vocab, self.special)
        return concat_segments(self.fmt, segments, self.concat_mode, self.vocab, self.special)

    # -- the prompt -------------------------------------------------------------------
    def prompt_turns(self, question_ids: list[int], instruction: str | None, output: str,
                     question_text: str | None = None) -> list[tuple]:
        """System + human turns. question_ids: the question's LLSSS ids; or ``question_text``
        to ask in text instead (the text-in control model of the end-to-end benchmark)."""
        if output not in SYSTEM_PROMPTS:
            raise ValueError(f"output must be one of {sorted(SYSTEM_PROMPTS)}, got {output!r}")
        question = self.text(question_text) if question_text is not None else wrap_audio(question_ids, self.special)
        human = (self.text(instruction + ": ") if instruction else []) + question
        return [("system", self.text(SYSTEM_PROMPTS[output])), ("human", human)]

    def prompt(self, question_ids: list[int], instruction: str | None = None, output: str = "text+audio",
               question_text: str | None = None) -> list[int]:
        """Input ids ending with ``<|BOT|>assistant\\n``: what generation starts from."""
        turns = self.prompt_turns(question_ids, instruction, output, question_text)
        ids, _ = build_chat(self.chat, turns, add_generation_prompt=True)
        return ids

    def item_prompt(self, item, output: str = "text+audio") -> list[int]:
        """The prompt that asks a corpus item's spoken question (with its instruction): what
        every evaluation generates its answer from."""
        return self.prompt(self.table.ids(item.question_audio.path), item.instruction, output)

    def sft_example(self, item, output: str = "text+audio", question: str = "audio") -> dict:
        """question: "audio" (the spoken question, AQAA) or "text" (its transcript: the control)."""
        q = self.table.ids(item.question_audio.path) if question == "audio" else []
        qt = item.question.text if question == "text" else None
        turns = self.prompt_turns(q, item.instruction, output, qt) + [("assistant", self.answer_ids(item, output))]
        ids, labels = build_chat(self.chat, turns)
        return {"input_ids": ids, "labels": labels}

    # -- pre-training -----------------------------------------------------------------
    def pretrain_example(self, task: str, text: str, audio_path: str) -> dict:
        sp, a = self.special, self.table.ids(audio_path)
        t = self.text(text)
        if task == "continuation":
            ids = [sp.bos] + wrap_audio(a, sp) + [sp.eot]
            return {"input_ids": ids, "labels": [IGNORE_INDEX] + ids[1:]}
        if task == "asr":
            head = [sp.bos] + wrap_audio(a, sp)
            return {"input_ids": head + t + [sp.eot], "labels": [IGNORE_INDEX] * len(head) + t + [sp.eot]}
        if task == "tts":
            head = [sp.bos] + t
            tail = wrap_audio(a, sp) + [sp.eot]
            return {"input_ids": head + tail, "labels": [IGNORE_INDEX] * len(head) + tail}
        if task == "interleaved":
            ids = [sp.bos] + interleave_answer(self.fmt, t, a, self.vocab, sp) + [sp.eot]
            return {"input_ids": ids, "labels": [IGNORE_INDEX] + ids[1:]}
        raise ValueError(f"unknown pre-training task {task!r}")


def pretrain_examples(builder: SequenceBuilder, corpus, mix: dict, seed: int = 0) -> list[dict]:
    """Pre-training examples over the train split's clips, ``mix[task]`` examples per clip
    (fractions allowed: 0.5 = every other clip, chosen by a seeded shuffle)."""
    rng = random.Random(seed)
    clips = corpus.utterances("train")
    out = []
    for task, per_clip in mix.items():
        n = round(per_clip * len(clips))
        order = list(range(len(clips)))
        rng.shuffle(order)
        picks = [order[k % len(order)] for k in range(n)]
        out += [builder.pretrain_example(task, clips[i][0].text, clips[i][1].path) for i in picks]
    rng.shuffle(out)
    return out


def sft_examples(builder: SequenceBuilder, items, aqta_fraction: float = 0.3, seed: int = 0,
                 question: str = "audio") -> list[dict]:
    """AQTAA for every item plus AQTA (text answers) for a seeded ``aqta_fraction`` of them.
    question="text": the same examples asked in text (the text-in control)."""
    rng = random.Random(seed)
    out = [builder.sft_example(it, "text+audio", question) for it in items]
    out += [builder.sft_example(it, "text", question) for it in items if rng.random() < aqta_fraction]
    rng.shuffle(out)
    return out


# ----------------------------------------------------------------------------- preferences

def preference_pairs(builder: SequenceBuilder, items, evasion_audio: dict, seed: int = 0,
                     evasion_fraction: float = 0.3) -> list[dict]:
    """Chosen = the correct spoken answer; rejected = a wrong answer spoken in the same style
    (another item's answer, same language and style, different text) or, for a seeded
    ``evasion_fraction``, the evasion "sorry, I did not hear you" in that style.

    evasion_audio: (language, style) -> LLSSS ids of the evasion rendering.
    Returns dicts with chosen_/rejected_ input_ids and labels (prompt masked).
    """
    rng = random.Random(seed)
    by_style: dict = {}
    for it in items:
        if not it.is_multi_segment:
            by_style.setdefault((it.language, it.style), []).append(it)
    pairs = []
    for it in items:
        if it.is_multi_segment:
            continue
        q = builder.table.ids(it.question_audio.path)
        turns = builder.prompt_turns(q, it.instruction, "text+audio")
        chosen = builder.answer_ids(it)
        key = (it.language, it.style)
        wrong = [o for o in by_style.get(key, []) if o.answer_text != it.answer_text]
        if rng.random() < evasion_fraction and key in evasion_audio:
            text = builder.text(EVASIONS[it.language])
            rejected = interleave_answer(builder.fmt, text, evasion_audio[key], builder.vocab, builder.special)
            kind = "evasion"
        elif wrong:
            rejected = builder.answer_ids(rng.choice(wrong))
            kind = "wrong_answer"
        else:
            continue
        c_ids, c_lab = build_chat(builder.chat, turns + [("assistant", chosen)])
        r_ids, r_lab = build_chat(builder.chat, turns + [("assistant", rejected)])
        pairs.append(dict(chosen_input_ids=c_ids, chosen_labels=c_lab, rejected_input_ids=r_ids,
                          rejected_labels=r_lab, kind=kind))
    return pairs


def own_answer_pairs(builder: SequenceBuilder, items, answers: list[list[int]], correct: list[bool]) -> list[dict]:
    """On-policy preference pairs: chosen = the correct spoken answer, rejected = the model's
    *own* answer to the same question where that answer was wrong (``correct[i]`` False: its
    text channel is not the expected answer). Answers that never reached ``<|EOT|>`` and
    multi-segment items are left out.

    These rejections are answers the model finds plausible (it generated them greedily), as
    in the paper's pipeline and CosyVoice's DPO recipe, which sample the reference model. The
    synthetic ones of :func:`preference_pairs` (another item's answer, an evasion) are not:
    the SFT model ranks nearly all of them right before DPO starts, so DPO has little to learn.
    ``answers[i]`` are generated ids as :func:`aqaa_ref.inference.generation.generate_answers`
    returns them (ending with ``<|EOT|>``).
    """
    if not len(items) == len(answers) == len(correct):
        raise ValueError(f"need one answer and one verdict per item: {len(items)}, {len(answers)}, {len(correct)}")
    eot, pairs = builder.special.eot, []
    for it, ans, ok in zip(items, answers, correct):
        if ok or it.is_multi_segment or not ans or ans[-1] != eot:
            continue
        turns = builder.prompt_turns(builder.table.ids(it.question_audio.path), it.instruction, "text+audio")
        c_ids, c_lab = build_chat(builder.chat, turns + [("assistant", builder.answer_ids(it))])
        r_ids, r_lab = build_chat(builder.chat, turns + [("assistant", ans[:-1])])
        pairs.append(dict(chosen_input_ids=c_ids, chosen_labels=c_lab, rejected_input_ids=r_ids,
                          rejected_labels=r_lab, kind="own_wrong_answer"))
    return pairs


def pad_collate(examples: list[dict], pad_id: int = 0) -> dict:
    """Right-pad a list of ``{"input_ids": [...], "labels": [...], ...}`` to one batch.

    Every list-valued key is padded (ids with ``pad_id``, keys containing "labels" with
    IGNORE_INDEX); numeric scalar keys are stacked; string keys (metadata) are dropped. Returns
    tensors: input_ids (B, T), attention_mask (B, T), labels (B, T), ...
    """
    out = {}
    list_keys = [k for k, v in examples[0].items() if isinstance(v, (list, tuple))]
    for k in list_keys:
        T = max(len(e[k]) for e in examples)
        fill = IGNORE_INDEX if "labels" in k else pad_id
        out[k] = torch.tensor([list(e[k]) + [fill] * (T - len(e[k])) for e in examples], dtype=torch.long)
        if k.endswith("input_ids"):
            mask_key = k.replace("input_ids", "attention_mask")
            out[mask_key] = torch.tensor([[1] * len(e[k]) + [0] * (T - len(e[k])) for e in examples], dtype=torch.long)
    for k, v in examples[0].items():
        if k not in list_keys and not isinstance(v, str):  # strings are metadata, not model input
            out[k] = torch.tensor([e[k] for e in examples])
    return out

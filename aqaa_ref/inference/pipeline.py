"""A spoken question in, a spoken answer out: tokenizer -> backbone -> parse -> vocoder.

    >>> aqaa = AQAA.from_recipe("toy")                   # trains the toy models, or reuses them
    >>> ans = aqaa.answer("data_samples/q01.wav")       # any path, bytes or (array, sample_rate)
    >>> ans.text, ans.wav.shape, ans.seconds            # the text channel and 16 kHz audio
    >>> ans.save("answer.wav")
    >>> for ev in aqaa.stream("q.wav"): ...             # Event("text"|"audio", ...) as they are made

The four steps, each a module of its own:

1. ``aqaa_ref.tokenizer``: the question's audio -> linguistic (16.7 Hz) and semantic (25 Hz)
   codes, interleaved LLSSS into the backbone's audio ids;
2. ``aqaa_ref.backbone.model``: the chat prompt (system prompt for the output kind, optional text
   instruction, the question's audio ids) -> greedy, format-constrained generation of the
   answer: 10 text tokens, then 15 audio tokens, and so on (``aqaa_ref.formats.constrained``);
3. ``aqaa_ref.formats.answer_format.parse_answer``: the answer ids -> the text channel + the LLSSS stream;
4. ``aqaa_ref.vocoder``: audio ids -> mel by flow matching -> waveform.

Outputs (``output=``): ``"text+audio"`` (default) and ``"audio"`` both ask for a spoken
answer (system prompt "answer in speech"); the model always writes its text channel
first, so they differ only in what the CLI prints. ``"text"`` asks for a text answer
(AQTA: no audio, no vocoder). A text ``instruction`` (e.g. "answer slowly") goes in front
of the spoken question, as in the corpus's text-instruction items.

Input limits: any sample rate, mono or multi-channel (mixed down), at most
``MAX_QUESTION_SECONDS`` seconds; silent or empty input is refused. Every refusal is an
:class:`~aqaa_ref.audio.AudioError` (a ``ValueError``) with a one-line message.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import torch
from transformers import DynamicCache

from aqaa_ref.audio import AudioError, load_audio, save_audio
from aqaa_ref.formats.parse import parse_answer
from aqaa_ref.formats.text_tokenizer import decode_text
from aqaa_ref.inference.generation import answer_processor, generate_answers
from aqaa_ref.vocoder import StreamDecoder, Vocoder, to_vocoder_codes

SAMPLE_RATE = 16_000
MAX_QUESTION_SECONDS = 20.0   # the toy corpus's questions are 1-6 s; 20 s bounds memory and time
SILENCE_PEAK = 1e-3           # a question whose loudest sample is below this is "silent"
OUTPUTS = ("text+audio", "audio", "text")


@dataclass
class Answer:
    """One answer. ``wav``: (T,) float32 at 16 kHz (empty for text answers)."""

    text: str
    wav: torch.Tensor
    ids: list[int]                       # the generated answer ids (ends with <|EOT|> when finished)
    question_ids: list[int]              # the question's LLSSS audio ids (the prompt's audio)
    ended: bool                          # False: stopped at max_new_tokens
    timings: dict = field(default_factory=dict)   # seconds: tokenize, generate, vocode, total
    sample_rate: int = SAMPLE_RATE

    @property
    def seconds(self) -> float:
        return self.wav.numel() / self.sample_rate

    def save(self, path) -> Path:
        if self.wav.numel() == 0:
            raise ValueError("this answer has no audio (output='text'); nothing to save")
        return save_audio(path, self.wav, self.sample_rate)


@dataclass
class Event:
    """A streaming event: ``kind`` "text" (``text``: new characters) or "audio" (``wav``: a piece)."""

    kind: str
    text: str = ""
    wav: torch.Tensor | None = None
    t: float = 0.0                       # seconds since the call started
    ids: tuple[int, ...] = ()            # the answer ids generated when this event was made


def load_question(audio, sample_rate: int | None = None, max_seconds: float = MAX_QUESTION_SECONDS) -> torch.Tensor:
    """A question (path, bytes, (array, rate) or array + ``sample_rate``) -> (T,) float32 mono
    16 kHz. Refuses (one-line AudioError) what cannot be a spoken question: unreadable, empty,
    silent, shorter than one token group, longer than ``max_seconds``."""
    if isinstance(audio, tuple) and len(audio) == 2 and sample_rate is None:
        audio, sample_rate = audio
    if not isinstance(audio, (str, Path, bytes, bytearray)) and sample_rate is None:
        if not hasattr(audio, "shape"):
            raise AudioError(f"expected a path, bytes or an audio array, got {type(audio).__name__}")
        raise AudioError("sample_rate is required when the question is an array")
    wav = load_audio(audio, SAMPLE_RATE, source_rate=sample_rate, max_seconds=max_seconds)
    if wav.abs().max() < SILENCE_PEAK:
        raise AudioError(f"the question is silent (peak {wav.abs().max():.1e} < {SILENCE_PEAK:g})")
    if wav.numel() < 0.12 * SAMPLE_RATE:
        raise AudioError(f"the question is {wav.numel() / SAMPLE_RATE * 1000:.0f} ms long; "
                         "at least 120 ms (one token group) is needed")
    return wav


class AQAA:
    """The end-to-end model: a dual tokenizer, a backbone + its sequence builder, a vocoder."""

    def __init__(self, dual, model, builder, vocoder: Vocoder | None, max_new_tokens: int = 400,
                 max_seconds: float = MAX_QUESTION_SECONDS):
        self.dual, self.model, self.builder, self.vocoder = dual, model.eval(), builder, vocoder
        self.max_new_tokens, self.max_seconds = max_new_tokens, max_seconds
        self.vocab, self.special = builder.vocab, builder.special

    @classmethod
    def from_recipe(cls, recipe="toy", stage: str = "merge", progress: bool = True, assets=None) -> "AQAA":
        """Train (or reuse from the cache) everything a recipe preset names, and assemble it.

        recipe: a :class:`~aqaa_ref.training.recipe.Recipe` or a preset name ("tiny", "toy").
        stage: which backbone checkpoint answers ("merge" = the 5:5:1 merge, the default)."""
        from aqaa_ref.training.recipe import Assets, Recipe, run_recipe
        from aqaa_ref.vocoder import load_or_train_mel2wav, load_or_train_vocoder

        recipe = Recipe.from_preset(recipe) if isinstance(recipe, str) else recipe
        assets = assets or Assets(recipe, progress)
        run_recipe(recipe, progress=progress, assets=assets)
        flow = load_or_train_vocoder(assets.corpus, assets.dual, recipe.vocoder,
                                     progress=progress)
        m2w = load_or_train_mel2wav(assets.corpus, recipe.mel2wav, progress=progress)
        return cls(assets.dual, assets.load_stage(stage), assets.builder, Vocoder(flow, m2w.eval()))

    @classmethod
    def from_pretrained(cls, folder=None, stage: str = "merge") -> "AQAA":
        """Load a shipped checkpoint folder (``python -m aqaa_ref export`` writes one): the
        models as trained and scored, no corpus and no training. ``folder``: default the
        repository's ``checkpoints/toy``; ``stage``: which backbone answers ("merge", or one of
        the stages shipped beside it). See :mod:`aqaa_ref.checkpoints`."""
        from aqaa_ref import checkpoints as ck
        from aqaa_ref.formats.answer_format import get_format
        from aqaa_ref.training.sequences import AudioTable, SequenceBuilder

        folder = ck.default_folder("toy") if folder is None else folder
        meta = ck.layout(folder)
        dual = ck.load_dual(folder)
        builder = SequenceBuilder(ck.load_text_tokenizer(folder), AudioTable({}, dual.vocab), get_format(meta["format"]),
                                  meta["concat_mode"])
        return cls(dual, ck.load_backbone(folder, stage), builder, ck.load_vocoder(folder))

    # -- 1. the question --------------------------------------------------------------
    def load_question(self, audio, sample_rate: int | None = None) -> torch.Tensor:
        """Any accepted input -> (T,) float32 mono 16 kHz, validated: :func:`load_question`."""
        return load_question(audio, sample_rate, self.max_seconds)

    def question_ids(self, wav: torch.Tensor) -> list[int]:
        """(T,) 16 kHz -> the question's LLSSS audio ids (vocab-offset)."""
        lin, sem = self.dual.encode(wav, SAMPLE_RATE)
        return self.dual.interleave(lin, sem).tolist()

    def prompt(self, question_ids: list[int], instruction: str | None, output: str) -> list[int]:
        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
        if instruction is not None and not isinstance(instruction, str):
            raise ValueError(f"instruction must be a string, got {type(instruction).__name__}")
        return self.builder.prompt(question_ids, instruction or None, "text" if output == "text" else "text+audio")

    # -- 2. generation, one token at a time ----------------------------------------
    @torch.no_grad()
    def tokens(self, prompt: list[int], output: str = "text+audio") -> Iterator[int]:
        """Greedy constrained decoding with a KV cache; yields answer ids (the last is <|EOT|>).

        The same choices as :func:`aqaa_ref.inference.generation.generate_answers` for a batch of one."""
        ids = torch.tensor([prompt])
        proc = answer_processor(self.builder, len(prompt), "text" if output == "text" else "text+audio")
        cache = DynamicCache(config=self.model.config)
        step_in = ids
        for _ in range(self.max_new_tokens):
            logits = self.model(input_ids=step_in, cache=cache, use_cache=True).logits[:, -1]
            t = int(proc(ids, logits.float()).argmax(-1))
            ids = torch.cat([ids, torch.tensor([[t]])], dim=1)
            yield t
            if t == self.special.eot:
                return
            step_in = torch.tensor([[t]])

    # -- 3 + 4. the answer ------------------------------------------------------------
    def answer(self, audio, sample_rate: int | None = None, instruction: str | None = None,
               output: str = "text+audio") -> Answer:
        """A spoken (or text) answer to a spoken question. See the module docstring."""
        t0 = time.perf_counter()
        wav = self.load_question(audio, sample_rate)
        q = self.question_ids(wav)
        prompt = self.prompt(q, instruction, output)
        t1 = time.perf_counter()
        ids = list(self.tokens(prompt, output))
        t2 = time.perf_counter()
        ans = self._finish(ids, q, output)
        t3 = time.perf_counter()
        ans.timings = dict(tokenize=t1 - t0, generate=t2 - t1, vocode=t3 - t2, total=t3 - t0)
        return ans

    def _finish(self, ids: list[int], question_ids: list[int], output: str) -> Answer:
        """Generated ids -> Answer: parse, decode the text channel, vocode the audio stream."""
        parsed = parse_answer(ids, self.vocab, self.special)
        wav = torch.zeros(0)
        if output != "text" and self.vocoder is not None:
            wav = self.vocoder.decode(to_vocoder_codes(parsed.aligned_audio(), self.vocab))
        return Answer(decode_text(self.builder.tok, parsed.text_ids), wav, ids, question_ids, parsed.ended)

    def answer_prompts(self, prompts: list[list[int]], output: str = "text+audio", batch_size: int = 32) -> list[Answer]:
        """Many prompts at once (batched, left-padded generation: the same greedy tokens as
        :meth:`answer`), each answer vocoded. For evaluation over a test split."""
        t0 = time.perf_counter()
        gen = generate_answers(self.model, self.builder, prompts, max_new_tokens=self.max_new_tokens,
                               batch_size=batch_size, output="text" if output == "text" else "text+audio")
        out = [self._finish(ids, [t for t in prompt if self.vocab.is_audio(torch.tensor(t))], output)
               for ids, prompt in zip(gen, prompts)]
        seconds = time.perf_counter() - t0
        for a in out:
            a.timings = {"batch_total": seconds}
        return out

    def stream(self, audio, sample_rate: int | None = None, instruction: str | None = None,
               output: str = "text+audio", chunk_groups: int = 3, first_chunk_groups: int = 1) -> Iterator[Event]:
        """The answer as it is made: text pieces and audio pieces, interleaved.

        Audio ids go to a :class:`~aqaa_ref.vocoder.StreamDecoder` as they are generated;
        every ``chunk_groups`` complete LLSSS groups (3 = one 10:15 block = 360 ms) an audio
        piece comes out, long before generation has finished; the first piece is made after
        ``first_chunk_groups`` groups (1 = 120 ms of audio), to start playing sooner. Each event
        carries the answer ids generated by then (``Event.ids``); the last event's are the whole
        answer, the same ids as :meth:`answer` (the same greedy loop)."""
        t0 = time.perf_counter()
        q = self.question_ids(self.load_question(audio, sample_rate))
        prompt = self.prompt(q, instruction, output)
        dec = (StreamDecoder(self.vocoder, chunk_groups=chunk_groups, first_chunk_groups=first_chunk_groups)
               if output != "text" else None)
        text_ids: list[int] = []
        made: list[int] = []                         # every answer id so far (Event.ids: a copy)
        said = ""                                    # the text decoded so far (byte-level BPE: decode the whole)
        for t in self.tokens(prompt, output):
            made.append(t)
            if self.vocab.is_audio(torch.tensor(t)):
                for piece in dec.push([t - self.vocab.linguistic_offset]):
                    yield Event("audio", wav=piece, t=time.perf_counter() - t0, ids=tuple(made))
            elif t not in self.special.all():
                text_ids.append(t)
                now = decode_text(self.builder.tok, text_ids)
                if len(now) > len(said):
                    yield Event("text", text=now[len(said):], t=time.perf_counter() - t0, ids=tuple(made))
                    said = now
        if dec is not None:
            for piece in dec.finish():
                yield Event("audio", wav=piece, t=time.perf_counter() - t0, ids=tuple(made))

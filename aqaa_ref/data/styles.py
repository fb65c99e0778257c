"""How things are spoken: voices, speaking rates, pitches, emotion proxies and personas.

A :class:`Speech` is one utterance: its text and every setting eSpeak needs to say it.
Instructions such as "answer slowly" or "as a robot" map to settings here, in one table
each, so a researcher can change what "slow" means in one place.

Emotion is a *proxy*: eSpeak has no emotional voices, so "happy" means faster, higher
and with a wider pitch range, "sad" slower, lower and flatter. The evaluation measures
exactly those signal properties (rate, F0, F0 range), never "emotion" itself.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from aqaa_ref.data.espeak import synthesize

#: The answering assistant's default voice (any language).
ASSISTANT_VOICE = "f2"
#: Question voices seen in training, and the one kept for the test split only.
TRAIN_VOICES = ("m1", "m2", "m3", "m5", "f1", "f3", "f5")
UNSEEN_VOICE = "m4"
#: CorpusConfig(voices="many"): more eSpeak variants in training, and five held-out voices
#: (two men, three women) so that "unseen voice" means voices, not one voice
MANY_TRAIN_VOICES = TRAIN_VOICES + ("m6", "m8", "Andy", "Annie", "linda")
MANY_UNSEEN_VOICES = ("m4", "m7", "f4", "Alicia", "steph")
#: the variants whose eSpeak definition says "gender male" (the voice-understanding answers)
MALE_VOICES = frozenset(("m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "Andy"))

#: speaking rate (words per minute) for each rate instruction
RATES = {"slow": 115, "normal": 175, "fast": 270}
#: base pitch (0..100) for each pitch instruction
PITCHES = {"low": 15, "normal": 50, "high": 85}

#: emotion label -> prosody settings (a proxy: see the module docstring)
EMOTIONS = {
    "neutral": dict(rate=175, pitch=50, pitch_range=50),
    "happy": dict(rate=205, pitch=72, pitch_range=95),
    "sad": dict(rate=125, pitch=28, pitch_range=10),
    "angry": dict(rate=225, pitch=55, pitch_range=80, volume=160),
}

#: role-play persona -> voice and prosody
PERSONAS = {
    "robot": dict(voice="m3", rate=160, pitch=50, pitch_range=0),
    "child": dict(voice="f5", rate=200, pitch=95, pitch_range=80),
    "grandpa": dict(voice="m2", rate=125, pitch=10, pitch_range=40),
    "teacher": dict(voice="f1", rate=160, pitch=55, pitch_range=60),
}


@dataclass(frozen=True)
class Speech:
    """One utterance: what is said and how. Feeds :func:`aqaa_ref.data.espeak.synthesize`."""

    text: str
    language: str = "en"
    voice: str = ASSISTANT_VOICE
    rate: int = 175
    pitch: int = 50
    pitch_range: int = 50
    volume: int = 100
    style: str = "neutral"  # a human-readable label: "slow", "happy", "robot", ...

    def synth_kwargs(self) -> dict:
        return dict(text=self.text, language=self.language, voice=self.voice, rate=self.rate,
                    pitch=self.pitch, pitch_range=self.pitch_range, volume=self.volume)

    def key(self) -> tuple:
        """Everything that determines the samples (the cache key of a rendering)."""
        return tuple(self.synth_kwargs().values())

    def synthesize(self):
        """-> (waveform (T,) float32, sample_rate, phonemes)."""
        return synthesize(**self.synth_kwargs())

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Speech":
        return cls(**d)


def assistant(text: str, language: str = "en", style: str = "neutral") -> Speech:
    """The assistant saying ``text`` in a named style.

    Styles: "neutral", a rate ("slow", "fast"), a pitch ("high", "low"), an emotion
    ("happy", "sad", "angry") or a persona ("robot", "child", "grandpa", "teacher").
    """
    s = Speech(text=text, language=language, style=style)
    if style in ("neutral", "normal"):
        return s
    if style in RATES:
        return replace(s, rate=RATES[style])
    if style in PITCHES:
        return replace(s, pitch=PITCHES[style])
    if style in EMOTIONS:
        return replace(s, **EMOTIONS[style])
    if style in PERSONAS:
        return replace(s, **PERSONAS[style])
    raise ValueError(f"unknown speaking style {style!r}")


ALL_STYLES = ("neutral", *[k for k in RATES if k != "normal"], *[k for k in PITCHES if k != "normal"],
              *[k for k in EMOTIONS if k != "neutral"], *PERSONAS)


# ----------------------------------------------------------------------------- numbers

_EN_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
            "fifteen sixteen seventeen eighteen nineteen").split()
_EN_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_ZH_DIGITS = "零一二三四五六七八九"
_JA_DIGITS = ["ゼロ", "いち", "に", "さん", "よん", "ご", "ろく", "なな", "はち", "きゅう"]


def number_word(n: int, language: str) -> str:
    """0..99 as a word in ``language`` ("en", "cmn", "yue" use Hanzi, "ja" uses kana)."""
    if not 0 <= n <= 99:
        raise ValueError(f"number_word supports 0..99, got {n}")
    if language == "en":
        if n < 20:
            return _EN_ONES[n]
        tens, ones = divmod(n, 10)
        return _EN_TENS[tens] + (f" {_EN_ONES[ones]}" if ones else "")
    if language in ("cmn", "yue"):
        if n < 10:
            return _ZH_DIGITS[n]
        tens, ones = divmod(n, 10)
        return ("" if tens == 1 else _ZH_DIGITS[tens]) + "十" + (_ZH_DIGITS[ones] if ones else "")
    if language == "ja":
        if n < 10:
            return _JA_DIGITS[n]
        tens, ones = divmod(n, 10)
        return ("" if tens == 1 else _JA_DIGITS[tens]) + "じゅう" + (_JA_DIGITS[ones] if ones else "")
    raise ValueError(f"no number words for language {language!r}")

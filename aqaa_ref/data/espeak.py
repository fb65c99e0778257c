"""Speech synthesis with libespeak-ng, driven through ctypes (no system package needed).

The Step-Audio team synthesised their answer audio with their own TTS; we do the same
at toy scale with eSpeak NG, a formant synthesiser: tiny, deterministic, 100+ languages,
several hundred times faster than real time on one core. The library ships inside the
PyPI wheel ``espeakng-loader``.

libespeak-ng keeps *global* state: one voice and one parameter set per process, and
static variables that no API resets (its pitch "flutter" index advances across
utterances, so the same call twice gives slightly different samples), and the breathy
voice variants (f2, f3, f5) draw noise from a generator seeded from the clock, so they
differed from process to process. To make identical inputs give identical samples,
:func:`synthesize` loads the library afresh for every utterance, seeds that generator
(``espeak_ng_SetRandSeed``) and unloads the library afterwards (about 5 ms), under a lock. Parallel synthesis must
use processes, not threads (see :func:`synthesize_many`).

    >>> wav, sr, phonemes = synthesize("what is three plus four", language="en", voice="m1")
    >>> wav.shape, sr          # ((T,), 22050), float32 in [-1, 1]
"""
from __future__ import annotations

import ctypes
import threading
from concurrent.futures import ProcessPoolExecutor

import numpy as np

#: eSpeak NG's native output rate.
ESPEAK_SAMPLE_RATE = 22_050

# libespeak-ng constants (speak_lib.h)
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_RATE, _VOLUME, _PITCH, _RANGE = 1, 2, 3, 4
_IPA = 0x02
_PHONEME_SEPARATOR = " "  # put between phoneme names (bits 8-23 of phonememode)

#: language code in this project -> eSpeak voice name
ESPEAK_VOICES_BY_LANGUAGE = {"en": "en-us", "cmn": "cmn", "yue": "yue", "ja": "ja"}

#: voice variant names: timbre presets shipped with eSpeak NG (m = male, f = female)
VOICES = ("m1", "m2", "m3", "m4", "m5", "f1", "f2", "f3", "f4", "f5")
#: more of eSpeak NG's variants (voices/!v), for CorpusConfig(voices="many")
MORE_VOICES = ("m6", "m7", "m8", "Andy", "Annie", "Alicia", "steph", "linda")

# espeak_EVENT is passed as a pointer; we never read it, so an opaque pointer suffices.
_SYNTH_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


class SynthesisError(RuntimeError):
    """eSpeak refused the request (unknown language or voice, bad parameter)."""


#: seed of libespeak-ng's noise generator (breathy voices), set at every load
_NOISE_SEED = 1


class _Espeak:
    """One loaded instance of libespeak-ng (see :meth:`close`)."""

    def __init__(self):
        import espeakng_loader

        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetSynthCallback.argtypes = [_SYNTH_CALLBACK]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                     ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_Synchronize.restype = ctypes.c_int
        lib.espeak_TextToPhonemes.argtypes = [ctypes.POINTER(ctypes.c_char_p), ctypes.c_int, ctypes.c_int]
        lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        lib.espeak_ng_SetRandSeed.restype = None
        # The path argument is the folder that *contains* espeak-ng-data.
        data_parent = str(__import__("pathlib").Path(espeakng_loader.get_data_path()).parent)
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data_parent.encode(), 0)
        if rate <= 0:
            raise SynthesisError(f"espeak_Initialize failed (returned {rate})")
        lib.espeak_ng_SetRandSeed(_NOISE_SEED)   # breath noise: the same draws in every process
        self.sample_rate = rate
        self.lib = lib
        self._chunks: list[np.ndarray] = []

        def on_audio(samples, n, events):
            if n > 0:
                self._chunks.append(np.ctypeslib.as_array(samples, shape=(n,)).copy())
            return 0

        self._callback = _SYNTH_CALLBACK(on_audio)  # keep a reference: ctypes must not free it
        lib.espeak_SetSynthCallback(self._callback)

    def set_voice(self, name: str) -> None:
        if self.lib.espeak_SetVoiceByName(name.encode()) != 0:
            raise SynthesisError(f"eSpeak has no voice {name!r}")

    def set_params(self, rate: int, pitch: int, pitch_range: int, volume: int = 100) -> None:
        for param, value in ((_RATE, rate), (_PITCH, pitch), (_RANGE, pitch_range), (_VOLUME, volume)):
            if self.lib.espeak_SetParameter(param, int(value), 0) != 0:
                raise SynthesisError(f"eSpeak rejected parameter {param}={value}")

    def speak(self, text: str) -> np.ndarray:
        self._chunks = []
        data = text.encode("utf-8") + b"\0"
        err = self.lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
        if err != 0:
            raise SynthesisError(f"espeak_Synth failed with code {err}")
        self.lib.espeak_Synchronize()
        pcm = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
        self._chunks = []
        return pcm

    def phonemes(self, text: str) -> str:
        """IPA phonemes, names separated by spaces, clauses joined with ' | '."""
        mode = _IPA | (ord(_PHONEME_SEPARATOR) << 8)
        buf = ctypes.c_char_p(text.encode("utf-8"))
        ptr = ctypes.cast(ctypes.pointer(buf), ctypes.POINTER(ctypes.c_char_p))
        out = []
        while buf.value:
            res = self.lib.espeak_TextToPhonemes(ptr, _CHARS_UTF8, mode)
            if res:
                out.append(res.decode("utf-8").strip())
            if not buf.value:
                break
        return " | ".join(o for o in out if o)


    def close(self) -> None:
        """Terminate and unload the library so the next load starts from clean statics."""
        from aqaa_ref.compat import unload_library

        self.lib.espeak_Terminate()
        unload_library(self.lib._handle)


_LOCK = threading.Lock()


def voice_name(language: str, voice: str | None) -> str:
    """The eSpeak voice string for a language and a timbre variant, e.g. ("en", "f2") -> "en-us+f2"."""
    if language not in ESPEAK_VOICES_BY_LANGUAGE:
        raise SynthesisError(f"unknown language {language!r}; known: {sorted(ESPEAK_VOICES_BY_LANGUAGE)}")
    if voice is not None and voice not in VOICES + MORE_VOICES:
        raise SynthesisError(f"unknown voice {voice!r}; known: {list(VOICES + MORE_VOICES)}")
    return ESPEAK_VOICES_BY_LANGUAGE[language] + (f"+{voice}" if voice else "")


def synthesize(
    text: str,
    language: str = "en",
    voice: str | None = "m1",
    rate: int = 175,
    pitch: int = 50,
    pitch_range: int = 50,
    volume: int = 100,
) -> tuple[np.ndarray, int, str]:
    """Speak ``text`` and return ``(waveform, sample_rate, phonemes)``.

    Args:
        text: what to say (UTF-8; any script the language's voice reads).
        language: one of ``aqaa_ref.data.LANGUAGES`` ("en", "cmn", "yue", "ja").
        voice: a timbre variant from :data:`VOICES` (None: the language's default voice).
        rate: speaking rate in words per minute, 80..450.
        pitch: base pitch, 0..100 (50 is the voice's normal).
        pitch_range: intonation range, 0..100 (0 = monotone).
        volume: amplitude, 0..200.

    Returns:
        waveform: (T,) float32 in [-1, 1] at ``sample_rate`` (22,050 Hz).
        sample_rate: eSpeak's output rate.
        phonemes: the IPA phonemes eSpeak spoke, names separated by spaces.

    Identical arguments give identical samples (the function resets every parameter).
    """
    if not isinstance(text, str) or not text.strip():
        raise SynthesisError("text to synthesize is empty")
    if not 80 <= rate <= 450:
        raise SynthesisError(f"rate {rate} outside 80..450 words per minute")
    if not 0 <= pitch <= 100 or not 0 <= pitch_range <= 100:
        raise SynthesisError(f"pitch {pitch} / pitch_range {pitch_range} outside 0..100")
    name = voice_name(language, voice)
    with _LOCK:
        eng = _Espeak()
        try:
            eng.set_voice(name)
            eng.set_params(rate, pitch, pitch_range, volume)
            pcm = eng.speak(text)
            phon = eng.phonemes(text)
        finally:
            eng.close()
    if pcm.size == 0:
        raise SynthesisError(f"eSpeak produced no audio for {text!r} ({language})")
    return pcm.astype(np.float32) / 32768.0, eng.sample_rate, phon


def _synthesize_kwargs(kwargs: dict):
    return synthesize(**kwargs)


def synthesize_many(requests: list[dict], workers: int = 1, chunksize: int = 16):
    """Synthesize many ``synthesize(**request)`` calls, in ``workers`` processes when > 1.

    Yields results in request order. Processes, not threads: libespeak-ng is global state.
    """
    if workers <= 1:
        for r in requests:
            yield synthesize(**r)
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        yield from pool.map(_synthesize_kwargs, requests, chunksize=chunksize)

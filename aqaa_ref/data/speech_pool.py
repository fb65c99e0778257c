"""Free speech: more eSpeak speech than the QA corpus holds, for the models that only learn sound.

The vocoder learns how audio tokens *sound*, not what answers *mean*, so nothing ties it to
the corpus's few hundred answer sentences: a vocoder trained on those alone learns to say
them (heard right 0.75 on training answers against 0.55 on test answers, issue 14). Here
every new utterance takes a real training utterance's delivery (language, voice, rate, pitch,
range: the exact mix of styles the corpus speaks in) and gives it new words::

    train utterance "what is seven plus two" (en, m3, rate 175, pitch 50)
        -> new text "two bird seven is what plus" said by m3 at rate 175, pitch 50

The new words are drawn from the *train* split's own texts of that language (whole words for
space-separated languages, characters for Chinese, Cantonese and Japanese), so no word,
fact or phrasing of the test split leaks into training.
"""
from __future__ import annotations

import random
from dataclasses import replace

import torch
from tqdm.auto import tqdm

from aqaa_ref.audio import resample
from aqaa_ref.data.espeak import synthesize_many
from aqaa_ref.data.styles import Speech

#: languages written without spaces between words: new text is drawn as characters
UNSPACED = frozenset({"cmn", "yue", "ja"})


def _units(texts: list[str], language: str) -> list[str]:
    """The pieces new sentences are built from: words, or characters for unspaced scripts."""
    if language in UNSPACED:
        return [c for t in texts for c in t if not c.isspace() and c not in "?？。，,.!！、"]
    return [w.strip("?,.!").lower() for t in texts for w in t.split() if w.strip("?,.!")]


def pool_speeches(corpus, n: int, seed: int = 0, split: str = "train") -> list[Speech]:
    """n new utterances (as :class:`Speech`), each a random ``split`` utterance's delivery
    with new text of about its length (words or characters drawn from the split's texts)."""
    if n <= 0:
        return []
    rng = random.Random(seed)
    styles = [sp for sp, _ in corpus.utterances(split)]
    by_lang: dict[str, list[str]] = {}
    for sp in styles:
        by_lang.setdefault(sp.language, []).append(sp.text)
    units = {lang: _units(texts, lang) for lang, texts in by_lang.items()}
    out = []
    for _ in range(n):
        sp = rng.choice(styles)
        pool = units[sp.language]
        length = len(_units([sp.text], sp.language)) or 1
        k = max(1, min(24 if sp.language in UNSPACED else 14, length + rng.randint(-2, 4)))
        sep = "" if sp.language in UNSPACED else " "
        out.append(replace(sp, text=sep.join(rng.choice(pool) for _ in range(k))))
    return out


def speech_pool(corpus, n: int, seed: int = 0, sample_rate: int | None = None, workers: int = 1,
                progress: bool = True) -> list[tuple[Speech, torch.Tensor]]:
    """:func:`pool_speeches`, synthesised: [(speech, waveform (T,) float32 at ``sample_rate``)].

    Nothing is written to disk: these clips are rendered when a model that asks for them trains
    (about 100 clips a second on 2 cores) and only the trained model is cached."""
    sr_out = sample_rate or corpus.config.sample_rate
    speeches = pool_speeches(corpus, n, seed)
    results = synthesize_many([sp.synth_kwargs() for sp in speeches], workers=workers)
    out = []
    for sp, (wav, sr, _) in tqdm(zip(speeches, results), total=len(speeches), desc="free speech",
                                 disable=not progress, leave=False):
        out.append((sp, resample(torch.from_numpy(wav), sr, sr_out)))
    return out

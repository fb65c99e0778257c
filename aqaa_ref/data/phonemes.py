"""Phoneme strings from eSpeak -> token lists for CTC targets.

eSpeak's IPA output separates phoneme names with single spaces, words with runs of
spaces and clauses with ``|``. Stress marks (ˈ ˌ) are prosody, not phoneme identity, and
are dropped; tone numbers (Mandarin ``a5``, Cantonese ``aa1``) are kept: they are phonemic.
"""
from __future__ import annotations

STRESS = str.maketrans("", "", "ˈˌ")


def phoneme_tokens(phonemes: str) -> list[str]:
    """"w ˌʌ t  ɪ z | t ˈuː" -> ["w", "ʌ", "t", "ɪ", "z", "t", "uː"]"""
    out = []
    for tok in phonemes.translate(STRESS).split():
        if tok and tok != "|":
            out.append(tok)
    return out

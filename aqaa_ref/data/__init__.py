"""The synthetic speech data engine: spoken questions and answers, rendered with eSpeak NG.

    from aqaa_ref.data import synthesize, build_corpus, CorpusConfig
"""
from aqaa_ref.data.corpus import (CONDITIONS, Corpus, CorpusConfig, build_corpus, load_corpus, long_answer_items,
                                 multi_segment_test_items, plan_items, strided)
from aqaa_ref.data.espeak import VOICES, SynthesisError, synthesize, synthesize_many
from aqaa_ref.data.phonemes import phoneme_tokens
from aqaa_ref.data.styles import ALL_STYLES, EMOTIONS, PERSONAS, PITCHES, RATES, Speech, assistant, number_word
from aqaa_ref.data.tasks import EXTRA_FAMILIES, FAMILIES, LANGUAGES, Item, Rendering

__all__ = ["CONDITIONS", "Corpus", "CorpusConfig", "build_corpus", "load_corpus", "long_answer_items",
           "multi_segment_test_items", "plan_items", "strided", "LANGUAGES",
           "VOICES", "SynthesisError", "synthesize", "synthesize_many", "phoneme_tokens", "ALL_STYLES",
           "EMOTIONS", "PERSONAS", "PITCHES", "RATES", "Speech", "assistant", "number_word", "FAMILIES", "EXTRA_FAMILIES",
           "Item", "Rendering"]

"""The synthetic speech data engine: spoken questions and answers, rendered with eSpeak NG.

    from aqaa_ref.data import synthesize, build_corpus, CorpusConfig
"""
from .corpus import CONDITIONS, Corpus, CorpusConfig, build_corpus, load_corpus, plan_items
from .espeak import LANGUAGES, VOICES, SynthesisError, synthesize, synthesize_many
from .phonemes import phoneme_tokens
from .styles import ALL_STYLES, EMOTIONS, PERSONAS, PITCHES, RATES, Speech, assistant, number_word
from .tasks import FAMILIES, Item, Rendering

__all__ = ["CONDITIONS", "Corpus", "CorpusConfig", "build_corpus", "load_corpus", "plan_items", "LANGUAGES",
           "VOICES", "SynthesisError", "synthesize", "synthesize_many", "phoneme_tokens", "ALL_STYLES",
           "EMOTIONS", "PERSONAS", "PITCHES", "RATES", "Speech", "assistant", "number_word", "FAMILIES",
           "Item", "Rendering"]

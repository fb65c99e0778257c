"""The dual-codebook audio tokenizer (facts §1): linguistic 16.67 Hz + semantic 25 Hz, interleaved 2:3.

    from aqaa_ref.tokenizer import DualConfig, load_or_train_dual
    tok = load_or_train_dual(corpus, DualConfig.from_preset("toy"))
    ids = tok.encode_interleaved(wav, sample_rate)

Modules: ``features`` (causal log-mel, training clips), ``layers`` (causal ConvNeXt-1D),
``kmeans``, ``ctc`` (phoneme inventory, PER, forced alignment), ``linguistic``,
``semantic``, ``dual`` (interleaving, streaming, save/load, cache), ``probes``.
"""
from aqaa_ref.tokenizer.ctc import PhonemeInventory
from aqaa_ref.tokenizer.dual import (CHUNK_SAMPLES, GROUP, GROUP_SAMPLES, DualConfig, DualTokenizer, StreamingEncoder,
                                     load_or_train_dual, train_dual, training_log)
from aqaa_ref.tokenizer.features import Clip, causal_log_mel, load_clips
from aqaa_ref.tokenizer.kmeans import assign, fit_kmeans, usage_stats
from aqaa_ref.tokenizer.linguistic import LinguisticConfig, LinguisticTokenizer, train_linguistic
from aqaa_ref.tokenizer.semantic import SemanticConfig, SemanticTokenizer, train_semantic

__all__ = ["PhonemeInventory", "CHUNK_SAMPLES", "GROUP", "GROUP_SAMPLES", "DualConfig", "DualTokenizer",
           "StreamingEncoder", "load_or_train_dual", "train_dual", "training_log", "Clip", "causal_log_mel",
           "load_clips", "assign", "fit_kmeans", "usage_stats", "LinguisticConfig", "LinguisticTokenizer",
           "train_linguistic", "SemanticConfig", "SemanticTokenizer", "train_semantic"]

"""Notebook 08: answering a spoken question in speech.

Modules: ``generation`` (constrained, KV-cached, batched generation and answer scoring),
``pipeline`` (``AQAA``: question audio -> tokenizer -> backbone -> parse -> vocoder ->
answer audio, offline and streaming).
"""

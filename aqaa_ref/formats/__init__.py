"""Notebooks 02-03: how text and audio share one sequence.

Modules, in the order a sequence is built: ``id_layout`` (the extended vocabulary: text ids,
then linguistic, then semantic; the LLSSS 2:3 group; the ignore index), ``text_tokenizer``
(byte-level BPE with the special tokens), ``answer_format`` (the text/audio answer formats
such as 10:15, multi-segment concatenation, the chat template), ``parse`` (reading an
answer back into text and audio), ``constrained`` (a logits processor that keeps
generation inside the format).
"""

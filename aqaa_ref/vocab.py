"""The extended vocabulary: where text, linguistic and semantic ids live in one id space.

Step-Audio lays ids out as text first, then the linguistic codebook, then the semantic
codebook (facts §1)::

    [0, text_vocab_size)                                   text tokens (incl. specials)
    [text_vocab_size, text_vocab_size + n_linguistic)      linguistic codes 0..n_linguistic-1
    [linguistic_end, linguistic_end + n_semantic)          semantic codes 0..n_semantic-1

The paper preset: 65,536 text ids, 1,024 linguistic (65536..66559), 4,096 semantic
(66560..70655). The real model's vocab is 74,752; the remaining 4,096 ids are padding
with no documented use (``extra``).

    >>> v = AudioVocab.paper()
    >>> v.linguistic_offset, v.semantic_offset, v.audio_end
    (65536, 66560, 70656)
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch


@dataclass(frozen=True)
class AudioVocab:
    text_vocab_size: int = 65_536
    n_linguistic: int = 1_024
    n_semantic: int = 4_096
    extra: int = 0  # unused ids after the audio block (4,096 in the released 74,752 vocab)

    @classmethod
    def paper(cls) -> "AudioVocab":
        return cls(65_536, 1_024, 4_096, extra=4_096)

    @property
    def linguistic_offset(self) -> int:
        return self.text_vocab_size

    @property
    def semantic_offset(self) -> int:
        return self.text_vocab_size + self.n_linguistic

    @property
    def audio_end(self) -> int:
        return self.semantic_offset + self.n_semantic

    @property
    def n_audio(self) -> int:
        return self.n_linguistic + self.n_semantic

    @property
    def size(self) -> int:
        """Total vocabulary size (the backbone's vocab_size)."""
        return self.audio_end + self.extra

    # -- classification of ids: work on ints or tensors alike -------------------------
    def is_linguistic(self, ids):
        return (ids >= self.linguistic_offset) & (ids < self.semantic_offset)

    def is_semantic(self, ids):
        return (ids >= self.semantic_offset) & (ids < self.audio_end)

    def is_audio(self, ids):
        return (ids >= self.linguistic_offset) & (ids < self.audio_end)

    def is_text(self, ids):
        return ids < self.text_vocab_size

    def to_dict(self) -> dict:
        return asdict(self)

    def audio_mask(self, ids: torch.Tensor) -> torch.Tensor:
        """Boolean mask of audio positions; ids: (..., T) -> (..., T) bool."""
        return self.is_audio(ids)

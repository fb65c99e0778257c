"""The id layout: where text, linguistic and semantic ids live in one id space, how the two
audio streams share one sequence (the LLSSS 2:3 group), and the label that carries no loss.

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

**The 2:3 group.** 2 linguistic tokens (16.67 Hz) and 3 semantic tokens (25 Hz) cover the
same 120 ms, so Step-Audio interleaves them as L L S S S per group (facts §1). Every part
of the project that lays out or reads audio ids (the tokenizer, the sequence builder, the
answer parser, the vocoder, the codebook ablation) uses :func:`interleave_2_3` and
:func:`deinterleave_2_3` below; an incomplete tail group is dropped, as Step-Audio does::

    >>> interleave_2_3([1, 2, 3], [10, 11, 12, 13])      # G = min(3 // 2, 4 // 3) = 1
    [1, 2, 10, 11, 12]
    >>> deinterleave_2_3([1, 2, 10, 11, 12, 3, 4, 13, 14, 15])
    ([1, 2, 3, 4], [10, 11, 12, 13, 14, 15])
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

#: linguistic, semantic tokens per interleaved group: 2 x 60 ms = 3 x 40 ms = 120 ms
GROUP = (2, 3)
GROUP_SIZE = sum(GROUP)
#: a label that carries no loss (prompt, padding): ``F.cross_entropy``'s ignore_index
IGNORE_INDEX = -100


def whole_groups(n_linguistic: int, n_semantic: int, group: tuple[int, int] = GROUP) -> int:
    """Complete groups two streams of these lengths fill: G = min(Nl // gl, Ns // gs).
    A stream with 0 tokens per group (a single-stream layout) does not bound G."""
    counts = [n // g for n, g in zip((n_linguistic, n_semantic), group) if g]
    return min(counts) if counts else 0


def interleave_2_3(linguistic, semantic, linguistic_offset: int = 0, semantic_offset: int = 0,
                   group: tuple[int, int] = GROUP):
    """(Nl,), (Ns,) codes -> (5 G,) ids L L S S S per group, offsets added; the tail dropped.

    Lists give a list, tensors a LongTensor (``view`` + ``cat``, no Python loop)."""
    gl, gs = group
    if isinstance(linguistic, torch.Tensor) or isinstance(semantic, torch.Tensor):
        lin = torch.as_tensor(linguistic, dtype=torch.long).reshape(-1)
        sem = torch.as_tensor(semantic, dtype=torch.long).reshape(-1)
        G = whole_groups(lin.numel(), sem.numel(), group)
        return torch.cat([lin[: G * gl].view(G, gl) + linguistic_offset,
                          sem[: G * gs].view(G, gs) + semantic_offset], dim=1).reshape(-1)
    G = whole_groups(len(linguistic), len(semantic), group)
    return [t for g in range(G)
            for t in [linguistic_offset + c for c in linguistic[g * gl:(g + 1) * gl]]
            + [semantic_offset + c for c in semantic[g * gs:(g + 1) * gs]]]


def deinterleave_2_3(ids, group: tuple[int, int] = GROUP):
    """(5 G,) ids of whole groups -> (linguistic (2 G,), semantic (3 G,)), in the input's type.
    No offsets are removed and nothing is checked (see ``DualTokenizer.deinterleave``)."""
    gl, gs = group
    if isinstance(ids, torch.Tensor):
        g = ids.reshape(-1, gl + gs)
        return g[:, :gl].reshape(-1), g[:, gl:].reshape(-1)
    n = gl + gs
    return ([t for k in range(0, len(ids), n) for t in ids[k:k + gl]],
            [t for k in range(0, len(ids), n) for t in ids[k + gl:k + n]])


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

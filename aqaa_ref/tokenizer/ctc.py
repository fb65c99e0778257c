"""CTC helpers: the phoneme inventory, greedy decoding, phoneme error rate, forced alignment.

Ids: 0 is the CTC blank, 1 is ``<unk>`` (a phoneme never seen in training), 2.. are the
phonemes of every language in the corpus, sorted.

Frame labels for the probes come from a forced alignment: the Viterbi path of the CTC
posteriors through ``blank? p1 blank? p2 ...``. CTC paths are "peaky" (a phoneme occupies
one or two slots, blanks fill the rest), so each slot is labelled with the phoneme whose
aligned slots are *nearest* to it (ties to the earlier one): each phoneme owns the span
from halfway after its predecessor to halfway before its successor.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from aqaa_ref.metrics import BLANK, UNK, edit_distance, greedy_decode, phoneme_error_rate  # noqa: F401 (re-exported)


@dataclass(frozen=True)
class PhonemeInventory:
    """The CTC output alphabet: ``(blank, <unk>, *phonemes)``."""

    phonemes: tuple[str, ...]

    @classmethod
    def from_sequences(cls, seqs) -> "PhonemeInventory":
        return cls(tuple(sorted({p for s in seqs for p in s})))

    def __len__(self) -> int:
        return len(self.phonemes) + 2

    def encode(self, tokens: list[str]) -> list[int]:
        index = self._index()
        return [index.get(t, UNK) for t in tokens]

    def decode(self, ids) -> list[str]:
        names = ("<blank>", "<unk>", *self.phonemes)
        return [names[int(i)] for i in ids]

    def _index(self) -> dict:
        if not hasattr(self, "_idx"):
            object.__setattr__(self, "_idx", {p: i + 2 for i, p in enumerate(self.phonemes)})
        return self._idx


def forced_align(log_probs: torch.Tensor, target: list[int]) -> list[int] | None:
    """Viterbi CTC alignment. log_probs: (S, C), target: L ids -> for each target phoneme the
    slot where its path segment starts (L ints), or None if S is too short for the target."""
    S, L = log_probs.shape[0], len(target)
    if L == 0:
        return []
    ext = [BLANK]
    for t in target:
        ext += [t, BLANK]
    E = len(ext)  # 2L + 1 states
    lp = log_probs[:, ext].double()  # (S, E)
    neg = float("-inf")
    score = torch.full((E,), neg, dtype=torch.double)
    score[0], score[1] = lp[0, 0], lp[0, 1]
    back = torch.zeros(S, E, dtype=torch.long)
    ext_t = torch.tensor(ext)
    skip_ok = torch.zeros(E, dtype=torch.bool)
    skip_ok[2:] = (ext_t[2:] != BLANK) & (ext_t[2:] != ext_t[:-2])
    for s in range(1, S):
        stay = score
        step = torch.cat([torch.tensor([neg], dtype=torch.double), score[:-1]])
        skip = torch.cat([torch.tensor([neg, neg], dtype=torch.double), score[:-2]])
        skip = torch.where(skip_ok, skip, torch.full_like(skip, neg))
        cand = torch.stack([stay, step, skip])  # (3, E)
        best, arg = cand.max(0)
        score = best + lp[s]
        back[s] = arg
    end = E - 1 if E == 1 or score[E - 1] >= score[E - 2] else E - 2
    if score[end] == neg:
        return None
    state, path = end, [0] * S
    for s in range(S - 1, -1, -1):
        path[s] = state
        state -= int(back[s, state])
    starts = [-1] * L
    for s, st in enumerate(path):
        if st % 2 == 1 and starts[(st - 1) // 2] < 0:
            starts[(st - 1) // 2] = s
    return starts


def slot_labels(starts: list[int], target: list[int], n_slots: int) -> torch.Tensor:
    """Label every slot with the phoneme whose aligned slot is nearest. -> (n_slots,) ids."""
    if not target:
        return torch.full((n_slots,), BLANK, dtype=torch.long)
    pos = torch.tensor(starts, dtype=torch.float)
    slots = torch.arange(n_slots, dtype=torch.float)
    nearest = (slots[:, None] - pos[None, :]).abs().argmin(1)  # argmin picks the earlier on ties
    return torch.tensor(target)[nearest]

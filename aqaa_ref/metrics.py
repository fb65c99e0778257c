"""Sequence metrics shared by the tokenizer's CTC head and the independent recognizer."""
from __future__ import annotations


def edit_distance(ref, hyp) -> int:
    """Levenshtein distance (substitutions + deletions + insertions), one row at a time."""
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i]
        for j, h in enumerate(hyp, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h)))
        prev = cur
    return prev[-1]

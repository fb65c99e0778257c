"""CTC decoding and phoneme error rates, shared by the tokenizer's CTC head and the
independent recognizer (the judge): both read phoneme ids off CTC posteriors, and both are
scored by edit distance. Ids: 0 is the CTC blank, 1 is ``<unk>``."""
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


BLANK, UNK = 0, 1


def greedy_decode(log_probs) -> list[int]:
    """Best CTC path, repeats merged, blanks dropped. log_probs: (S, C) -> ids."""
    best = log_probs.argmax(-1).tolist()
    out, prev = [], BLANK
    for b in best:
        if b != prev and b != BLANK:
            out.append(b)
        prev = b
    return out


def per(ref_tokens: list, hyp_tokens: list) -> float:
    """Phoneme error rate edit_distance / len(ref) (may exceed 1; empty ref: 0 or 1)."""
    if not ref_tokens:
        return 0.0 if not hyp_tokens else 1.0
    return edit_distance(ref_tokens, hyp_tokens) / len(ref_tokens)


def corpus_per(pairs) -> float:
    """Pooled PER over (ref, hyp) pairs: total edits / total reference tokens."""
    pairs = list(pairs)
    edits = sum(edit_distance(r, h) for r, h in pairs)
    return edits / max(1, sum(len(r) for r, _ in pairs))


def phoneme_error_rate(hyps: list[list[int]], refs: list[list[int]]) -> float:
    """:func:`corpus_per` over parallel lists of hypotheses and references."""
    return corpus_per(zip(refs, hyps))

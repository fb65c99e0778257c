"""CTC decoding and phoneme error rates, shared by the tokenizer's CTC head and the
independent recognizer (the judge): both read phoneme ids off CTC posteriors, and both are
scored by edit distance. Ids: 0 is the CTC blank, 1 is ``<unk>``. And the intervals the
evaluation prints beside a rate measured on few items (:func:`wilson_interval`) and the
ablations beside a mean and a difference of means over items (:func:`bootstrap_interval`,
:func:`paired_bootstrap`)."""
from __future__ import annotations

import math


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


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a rate ``successes / n`` (z = 1.96: 95 %) -> (low, high).

    With p = k / n: centre (p + z^2 / 2n) / (1 + z^2 / n), half-width
    z sqrt(p (1 - p) / n + z^2 / 4n^2) / (1 + z^2 / n). Unlike p +- z sqrt(p (1 - p) / n) it
    stays inside [0, 1] and is not zero-wide at k = 0 or k = n, which matters on the few items
    of a toy test condition. n = 0 gives (nan, nan).

        >>> [round(x, 4) for x in wilson_interval(5, 10)]
        [0.2366, 0.7634]
        >>> [round(x, 4) for x in wilson_interval(0, 10)]
        [0.0, 0.2775]
    """
    if n < 0 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n, got {successes} of {n}")
    if n == 0:
        return math.nan, math.nan
    p, z2 = successes / n, z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    # exact at the ends: the low end is 0 at k = 0 and the high end 1 at k = n (not 1e-17 off)
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high


def _resample_means(values, n_boot: int, seed: int):
    """(n_boot,) means of ``values`` (n,) resampled with replacement, from a seeded generator."""
    import torch

    x = torch.as_tensor(values, dtype=torch.float64)
    if x.dim() != 1 or x.numel() == 0:
        raise ValueError(f"need a non-empty 1-D list of per-item values, got shape {tuple(x.shape)}")
    g = torch.Generator().manual_seed(seed)
    picks = torch.randint(x.numel(), (n_boot, x.numel()), generator=g)
    return x[picks].mean(dim=1)


def bootstrap_interval(values, level: float = 0.95, n_boot: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of per-item ``values`` -> (low, high).

    Resample the n items with replacement ``n_boot`` times, take each resample's mean, and
    report the (1 - level) / 2 and (1 + level) / 2 quantiles of those means. It assumes only
    that items are exchangeable, so it serves accuracies (0/1 per item) and per-item scores
    such as an audio-token agreement alike. Seeded: the same values give the same interval.
    """
    means = _resample_means(values, n_boot, seed)
    a = (1.0 - level) / 2
    q = means.quantile(means.new_tensor([a, 1.0 - a]))
    return float(q[0]), float(q[1])


def paired_bootstrap(a, b, level: float = 0.95, n_boot: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """Mean difference ``a - b`` over the same items and its percentile bootstrap interval.

    -> (difference, low, high). The items are resampled *together* (item i keeps its pair
    a[i], b[i]), so an item that is hard for both variants does not widen the interval: the
    comparison of two ablation variants on one test set.
    """
    if len(a) != len(b):
        raise ValueError(f"paired values need the same items: {len(a)} vs {len(b)}")
    d = [x - y for x, y in zip(a, b)]
    lo, hi = bootstrap_interval(d, level, n_boot, seed)
    return sum(d) / len(d), lo, hi

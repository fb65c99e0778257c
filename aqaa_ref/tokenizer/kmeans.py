"""k-means in torch: k-means++ initialisation, Lloyd iterations, nearest-centroid assignment.

Step-Audio's linguistic tokens are "the encoder output quantized by the nearest k-means
centroid": a stored (K, D) table and a Euclidean argmin, no learned VQ layer.

    >>> centroids = fit_kmeans(x, k=512, iters=10, seed=0)   # x: (N, D) -> (K, D)
    >>> codes = assign(x, centroids)                          # (N,) int64 in [0, K)
"""
from __future__ import annotations

import torch


def sq_distances(x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Squared Euclidean distances. x: (N, D), c: (K, D) -> (N, K).

    ``|x|^2 - 2 x.c + |c|^2``; the ``|x|^2`` term is kept so values are true distances.
    """
    return (x * x).sum(1, keepdim=True) - 2.0 * x @ c.T + (c * c).sum(1)[None, :]


@torch.no_grad()
def assign(x: torch.Tensor, centroids: torch.Tensor, chunk: int = 65_536) -> torch.Tensor:
    """Index of the nearest centroid for each row. x: (N, D), centroids: (K, D) -> (N,) int64."""
    x = x.float()
    c = centroids.float()
    out = [sq_distances(x[i:i + chunk], c).argmin(1) for i in range(0, x.shape[0], chunk)]
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.long)


@torch.no_grad()
def kmeans_plus_plus(x: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    """k-means++ seeding (Arthur & Vassilvitskii 2007). x: (N, D) -> (k, D).

    First centroid uniform; each next one drawn with probability proportional to the
    squared distance to the nearest centroid chosen so far (inverse-CDF sampling).
    """
    n = x.shape[0]
    if n < k:
        raise ValueError(f"k-means needs at least k={k} points, got {n}")
    idx = [int(torch.randint(n, (1,), generator=generator))]
    d2 = (x - x[idx[0]]).pow(2).sum(1)  # (N,) squared distance to the nearest chosen centroid
    for _ in range(1, k):
        cdf = d2.double().cumsum(0)
        if cdf[-1] <= 0:  # fewer distinct points than k: fill with uniform draws
            nxt = int(torch.randint(n, (1,), generator=generator))
        else:
            u = torch.rand(1, generator=generator, dtype=torch.double) * cdf[-1]
            nxt = min(int(torch.searchsorted(cdf, u)), n - 1)
        idx.append(nxt)
        d2 = torch.minimum(d2, (x - x[nxt]).pow(2).sum(1))
    return x[idx].clone()


@torch.no_grad()
def fit_kmeans(x: torch.Tensor, k: int, iters: int = 10, seed: int = 0, init_points: int = 20_000,
               progress=None) -> torch.Tensor:
    """k-means++ init on up to ``init_points`` rows, then ``iters`` Lloyd steps on all rows.

    x: (N, D) float -> centroids (k, D) float32. An empty cluster is re-seeded with the
    point currently farthest from its centroid. Deterministic given ``seed``.
    """
    g = torch.Generator().manual_seed(seed)
    x = x.float()
    sub = x[torch.randperm(x.shape[0], generator=g)[:init_points]]
    c = kmeans_plus_plus(sub, k, g)
    for _ in range(iters):
        codes = assign(x, c)
        sums = torch.zeros_like(c).index_add_(0, codes, x)
        counts = torch.bincount(codes, minlength=k).float()
        empty = counts == 0
        c = torch.where(empty[:, None], c, sums / counts.clamp(min=1)[:, None])
        if empty.any():  # re-seed empty clusters with the worst-fit points
            err = (x - c[codes]).pow(2).sum(1)
            c[empty] = x[err.topk(int(empty.sum())).indices]
        if progress is not None:
            progress.update()
    return c


def usage_stats(codes: torch.Tensor, k: int) -> dict:
    """Codebook health of a code sequence: fraction of the K codes used and perplexity.

    Perplexity = exp(entropy of the code histogram): K if all codes are equally used,
    1 if only one is.
    """
    counts = torch.bincount(codes.reshape(-1), minlength=k).float()
    p = counts / counts.sum().clamp(min=1)
    entropy = -(p[p > 0] * p[p > 0].log()).sum()
    return {"codes": k, "used": int((counts > 0).sum()), "used_fraction": float((counts > 0).float().mean()),
            "perplexity": float(entropy.exp())}

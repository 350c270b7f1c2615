"""The ranking metrics, as pure functions over plain values (no database): the offline ones (Recall, NDCG,
HitRate, MRR, coverage and mean popularity at K) and the list metrics that the live reports share with them
(coverage, intra-list diversity). The offline evaluation (`training.evaluation`) calls these, and so do
analytics' rollups and experiment report through `analytics.metrics`, which adds the live-only ones; the
tests check each against small hand-computed cases."""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping, Sequence

import numpy as np


def coverage(*, recommended: Iterable, catalog_size: int) -> float:
    """The share of the catalog that appeared in any list (items outside the catalog still count once)."""
    if catalog_size <= 0:
        return 0.0
    return min(1.0, len(set(recommended)) / catalog_size)


def intra_list_diversity(vectors: np.ndarray) -> float | None:
    """Mean pairwise cosine distance between the items of one list (rows of `vectors`). None for a list
    of fewer than two items, which has no pairs."""
    n = len(vectors)
    if n < 2:
        return None
    v = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    v = v / np.where(norms == 0, 1.0, norms)
    sims = v @ v.T
    mean_sim = (sims.sum() - np.trace(sims)) / (n * (n - 1))
    return float(1.0 - mean_sim)


def mean_diversity(lists: Iterable[np.ndarray]) -> float | None:
    """The mean intra-list diversity over lists that have pairs; None when none has."""
    values = [d for d in (intra_list_diversity(v) for v in lists) if d is not None]
    return float(np.mean(values)) if values else None


# --- offline ranking metrics, for one user's ranked list and the set of relevant (held-out) items


def recall_at_k(ranked: Sequence, relevant: Collection, k: int) -> float:
    if not relevant:
        return 0.0
    return len(set(ranked[:k]) & set(relevant)) / len(relevant)


def hit_rate_at_k(ranked: Sequence, relevant: Collection, k: int) -> float:
    return 1.0 if set(ranked[:k]) & set(relevant) else 0.0


def ndcg_at_k(ranked: Sequence, relevant: Collection, k: int) -> float:
    """Binary-relevance NDCG: DCG of the top k over the DCG of a perfect top k."""
    if not relevant:
        return 0.0
    relevant = set(relevant)
    dcg = sum(1.0 / math.log2(i + 2) for i, item in enumerate(ranked[:k]) if item in relevant)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(len(relevant), k)))
    return dcg / ideal


def reciprocal_rank(ranked: Sequence, relevant: Collection) -> float:
    """1 / the rank of the first relevant item in `ranked`, 0 when none is in it."""
    relevant = set(relevant)
    for i, item in enumerate(ranked):
        if item in relevant:
            return 1.0 / (i + 1)
    return 0.0


def coverage_at_k(lists: Iterable[Sequence], k: int, catalog_size: int) -> float:
    return coverage(recommended=(item for ranked in lists for item in ranked[:k]), catalog_size=catalog_size)


def mean_popularity_at_k(lists: Iterable[Sequence], k: int, popularity: Mapping) -> float:
    """The mean training popularity (interaction count) of the recommended items."""
    values = [popularity.get(item, 0) for ranked in lists for item in ranked[:k]]
    return float(np.mean(values)) if values else 0.0

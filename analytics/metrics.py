"""The metrics, as pure functions over plain values (no database): the live ones (CTR, conversion,
coverage, diversity, popularity concentration, novelty) and the offline ranking ones (Recall, NDCG,
HitRate, MRR at K). Rollups and the offline evaluation both call these, and the tests check each against
small hand-computed cases."""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping, Sequence

import numpy as np


def ctr(*, clicks: int, impressions: int) -> float:
    """Clicks per item shown."""
    return clicks / impressions if impressions else 0.0


def conversion_rate(*, conversions: int, clicks: int) -> float:
    """Conversions per recommendation click."""
    return conversions / clicks if clicks else 0.0


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


def gini(counts: Sequence[float]) -> float:
    """The Gini coefficient of impressions over items: 0 when every item was shown equally often, near 1
    when a few items take all impressions. `counts` includes the items shown zero times."""
    x = np.sort(np.asarray(counts, dtype=np.float64))
    n = len(x)
    total = x.sum()
    if n == 0 or total == 0:
        return 0.0
    ranks = np.arange(1, n + 1)
    return float((2.0 * (ranks * x).sum()) / (n * total) - (n + 1) / n)


def novelty(*, recommended: Sequence, popularity: Mapping, n_users: int) -> float | None:
    """The mean self-information -log2(p) of what was recommended, where p is the share of users who
    interacted with the item; an item nobody interacted with counts as one user's (so it is finite)."""
    if not recommended or n_users <= 0:
        return None
    total = 0.0
    for item in recommended:
        p = max(popularity.get(item, 0), 1) / n_users
        total += -math.log2(min(p, 1.0))
    return total / len(recommended)


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

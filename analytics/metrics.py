"""The live metrics, as pure functions over plain values (no database): CTR, conversion, popularity
concentration (Gini), novelty, and the list metrics the offline evaluation measures too (coverage,
intra-list diversity: defined once, in `training.metrics`, and named here so that the rollups and the
experiment report read every metric from this module). The tests check each against small hand-computed
cases."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from training.metrics import coverage, intra_list_diversity, mean_diversity

__all__ = ["conversion_rate", "coverage", "ctr", "gini", "intra_list_diversity", "mean_diversity", "novelty"]


def ctr(*, clicks: int, impressions: int) -> float:
    """Clicks per item shown."""
    return clicks / impressions if impressions else 0.0


def conversion_rate(*, conversions: int, clicks: int) -> float:
    """Conversions per recommendation click."""
    return conversions / clicks if clicks else 0.0


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

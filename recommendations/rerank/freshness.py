"""Freshness: newer items get a boost that halves every `half_life_days`."""

from __future__ import annotations

from datetime import datetime

import numpy as np

from recommendations.rerank.candidates import NO_TIME, Candidates, time_us


def freshness_boost(
    candidates: Candidates, *, now: datetime, weight: float, half_life_days: float
) -> Candidates:
    """Adds `weight * 0.5 ** (age / half_life)`: `weight` for an item published now, half of it after one
    half-life. Items of unknown age get nothing."""
    if weight == 0:
        return candidates
    known = candidates.published != NO_TIME
    # integer microseconds, then seconds: the same float as timedelta.total_seconds()
    age_days = np.maximum((time_us(now) - candidates.published[known]) / 1e6 / 86400.0, 0.0)
    score = candidates.score.copy()
    score[known] = score[known] + weight * np.power(0.5, age_days / half_life_days)
    return candidates.with_score(score)

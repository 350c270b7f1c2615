"""Freshness: newer items get a boost that halves every `half_life_days`."""

from __future__ import annotations

from datetime import datetime

from recommendations.rerank.candidates import Scored, evolve


def freshness_boost(
    candidates: list[Scored], *, now: datetime, weight: float, half_life_days: float
) -> list[Scored]:
    """Adds `weight * 0.5 ** (age / half_life)`: `weight` for an item published now, half of it after one
    half-life. Items of unknown age get nothing."""
    if weight == 0:
        return list(candidates)
    out = []
    for c in candidates:
        if c.published_at is None:
            out.append(c)
            continue
        age_days = max((now - c.published_at).total_seconds() / 86400.0, 0.0)
        out.append(evolve(c, score=c.score + weight * 0.5 ** (age_days / half_life_days)))
    return out

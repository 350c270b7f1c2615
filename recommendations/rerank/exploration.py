"""Exploration: a small share of the slots goes to new items nobody has interacted with yet, so that they
collect the interactions that let them compete on their own."""

from __future__ import annotations

from datetime import datetime

from recommendations.rerank.candidates import Scored, evolve


def exploration_slots(
    ranked: list[Scored],
    pool: list[Scored],
    *,
    limit: int,
    share: float,
    max_age_days: float,
    now: datetime,
) -> list[Scored]:
    """Returns `ranked` (at most `limit` items) with its last `int(share * limit)` slots (at least one when
    share > 0 and limit >= 2) given to the best-scored items of `pool` that are not in `ranked`, have no
    interactions and are at most `max_age_days` old. Only slots that such items exist for are changed."""
    ranked = list(ranked[:limit])
    if share <= 0 or limit < 2:
        return ranked
    slots = max(1, int(share * limit))
    in_ranked = {c.pk for c in ranked}
    eligible = [  # filtered before sorting: the test is per item, and few of ~500 candidates pass it
        c
        for c in pool
        if c.interaction_count == 0
        and c.pk not in in_ranked
        and c.published_at is not None
        and (now - c.published_at).total_seconds() <= max_age_days * 86400
    ]
    fresh = sorted(eligible, key=lambda c: (-c.score, c.pk))[:slots]
    if not fresh:
        return ranked
    keep = ranked[: max(len(ranked) - len(fresh), 0)] if len(ranked) + len(fresh) > limit else ranked
    return keep + [evolve(c, explored=True) for c in fresh]

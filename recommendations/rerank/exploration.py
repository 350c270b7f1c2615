"""Exploration: a small share of the slots goes to new items nobody has interacted with yet, so that they
collect the interactions that let them compete on their own."""

from __future__ import annotations

from datetime import datetime

import numpy as np

from recommendations.rerank.candidates import NO_TIME, Candidates, concat, member, order_by_score, time_us


def exploration_slots(
    ranked: Candidates,
    pool: Candidates,
    *,
    limit: int,
    share: float,
    max_age_days: float,
    now: datetime,
) -> Candidates:
    """Returns `ranked` (at most `limit` items) with its last `int(share * limit)` slots (at least one when
    share > 0 and limit >= 2) given to the best-scored items of `pool` that are not in `ranked`, have no
    interactions and are at most `max_age_days` old. Only slots that such items exist for are changed."""
    ranked = ranked.take(slice(0, limit))
    if share <= 0 or limit < 2:
        return ranked
    slots = max(1, int(share * limit))
    known = pool.published != NO_TIME
    now_us = time_us(now)
    age_seconds = (now_us - np.where(known, pool.published, now_us)) / 1e6
    eligible = (
        (pool.interactions == 0) & ~member(pool.pk, ranked.pk) & known & (age_seconds <= max_age_days * 86400)
    )
    fresh = pool.take(eligible)
    fresh = fresh.take(order_by_score(fresh.score, fresh.pk)[:slots])
    if not len(fresh):
        return ranked
    keep = (
        ranked.take(slice(0, max(len(ranked) - len(fresh), 0)))
        if len(ranked) + len(fresh) > limit
        else ranked
    )
    return concat([keep, fresh.with_columns(explored=np.ones(len(fresh), dtype=bool))])

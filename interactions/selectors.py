"""Reads of the interaction stream that other apps rely on."""

from __future__ import annotations

from django.conf import settings


def event_weight(event_type: str) -> float:
    """How much one event of this type counts, from the one table `settings.RECSYS_EVENT_WEIGHTS`. User
    vectors, the fallback vector built from history, popularity (trending, the popularity penalty, the
    ranker's popularity features), co-visitation and offline evaluation all weigh events with it. A type
    missing from the table counts nothing."""
    return float(settings.RECSYS_EVENT_WEIGHTS.get(event_type, 0.0))


def event_weights() -> dict[str, float]:
    """The whole table, {event_type: weight} (for SQL that joins on it)."""
    return {event_type: float(weight) for event_type, weight in settings.RECSYS_EVENT_WEIGHTS.items()}

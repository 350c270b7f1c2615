"""Reads of the interaction stream that other apps rely on (the event weights), and of users and their events
(for support staff: `GET /api/v1/users/{id}`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db.models import BooleanField, Count, ExpressionWrapper, Q
from django.http import Http404

from interactions.models import Event, UserProfile


@dataclass(frozen=True)
class UserActivity:
    user_id: str
    profile: UserProfile | None  # None: events arrived, but no vector was computed yet
    event_counts: dict[str, int] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)  # newest first


def user_activity_get(*, user_id: str, limit: int) -> UserActivity:
    """A user's profile, how many events of each type they have, and their `limit` newest events. Http404
    when neither a profile nor an event knows the id. Three queries; vectors are not loaded."""
    profile = (
        UserProfile.objects.filter(external_id=user_id)
        .defer("embedding", "vector_sum")
        .annotate(has_vector=ExpressionWrapper(Q(embedding__isnull=False), output_field=BooleanField()))
        .first()
    )
    counts: dict[str, Any] = dict(
        Event.objects.filter(user_id=user_id)
        .values("event_type")
        .annotate(n=Count("id"))
        .order_by()
        .values_list("event_type", "n")
    )
    if profile is None and not counts:
        raise Http404(f"No user with id {user_id!r}.")
    events = list(Event.objects.filter(user_id=user_id).order_by("-timestamp", "-id")[:limit])
    return UserActivity(user_id=user_id, profile=profile, event_counts=counts, events=events)


def event_weight(event_type: str) -> float:
    """How much one event of this type counts, from the one table `settings.RECSYS_EVENT_WEIGHTS`. User
    vectors, the fallback vector built from history, popularity (trending, the popularity penalty, the
    ranker's popularity features), co-visitation and offline evaluation all weigh events with it. A type
    missing from the table counts nothing."""
    return float(settings.RECSYS_EVENT_WEIGHTS.get(event_type, 0.0))


def event_weights() -> dict[str, float]:
    """The whole table, {event_type: weight} (for SQL that joins on it)."""
    return {event_type: float(weight) for event_type, weight in settings.RECSYS_EVENT_WEIGHTS.items()}


def users_active(*, since: datetime) -> list[tuple[str, datetime]]:
    """(user id, when their vector last changed) of the users whose events were applied since then, the
    most recent first. One query over the profiles (recommendations refreshes these users' lists)."""
    return list(
        UserProfile.objects.filter(updated_at__gte=since)
        .order_by("-updated_at")
        .values_list("external_id", "updated_at")
    )


def event_is_stored(*, event_id: str) -> bool:
    """Whether the event with this id is stored (an indexed lookup)."""
    return Event.objects.filter(event_id=event_id).exists()

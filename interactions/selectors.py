"""Reads of the interaction stream that other apps rely on (the event weights), and of users and their events
(for support staff: `GET /api/v1/users/{id}`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import BooleanField, Count, ExpressionWrapper, Q, QuerySet
from django.http import Http404

from interactions.models import Event, EventType, UserProfile

# The event types credited to the served list they carry the recommendation id of (attribution's clicks).
LIST_CLICK_TYPES = (EventType.CLICK, EventType.ADD_TO_CART)


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


def item_actor_counts(*, until: datetime) -> tuple[dict[int, int], int]:
    """Distinct users per item among the events before `until`, and how many distinct users there are
    (analytics' novelty reference). Two aggregates over the events."""
    actor = "user_id"
    popularity: dict[int, int] = dict(
        Event.objects.filter(timestamp__lt=until, item__isnull=False)
        .values("item_id")
        .annotate(n=Count(actor, distinct=True))
        .values_list("item_id", "n")
    )
    n_users = Event.objects.filter(timestamp__lt=until).aggregate(n=Count(actor, distinct=True))["n"] or 0
    return popularity, n_users


def events_list_clicks(*, scope: Q) -> QuerySet[Event]:
    """The events in `scope` (a Q over the event's fields) that attribution credits to a served list:
    clicks and add-to-carts that carry a recommendation id."""
    return Event.objects.filter(scope, recommendation_id__isnull=False, event_type__in=LIST_CLICK_TYPES)


def events_purchase_pks(*, scope: Q, exclude: set[int]) -> QuerySet[Event, int]:
    """The ids, ascending, of the purchases of a known item in `scope`, but the `exclude`d ones."""
    return (
        Event.objects.filter(scope, event_type=EventType.PURCHASE, item__isnull=False)
        .exclude(pk__in=exclude)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def event_pks_in(*, scope: Q, pks: list[int]) -> list[int]:
    """Which of these event ids are in `scope`."""
    return list(Event.objects.filter(scope, pk__in=pks).values_list("pk", flat=True))


def event_pk_first_received(*, pk_gt: int, pk_lte: int, received_since: datetime) -> int | None:
    """The lowest id in (pk_gt, pk_lte] of an event received since then (an index range scan by id)."""
    return (
        Event.objects.filter(pk__gt=pk_gt, pk__lte=pk_lte, received_at__gte=received_since)
        .order_by("pk")
        .values_list("pk", flat=True)
        .first()
    )


def event_pk_last() -> int:
    """The highest event id (0 when there is none)."""
    return Event.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


def events_prunable(*, before: datetime, attributed_until: int) -> QuerySet[Event]:
    """The events older than `before`, with an id at or behind `attributed_until`, whose vector work is
    done: folded into their user's vector, or with nothing to fold (anonymous, or an item without a vector)."""
    folded = Q(vector_applied=True) | Q(user_id__isnull=True) | Q(item__isnull=True) | Q(item__embedding=None)
    return Event.objects.filter(folded, timestamp__lt=before, pk__lte=attributed_until)


def events_other_than(*, pks: QuerySet[Any, Any]) -> QuerySet[Event]:
    """Every event but these (`pks`: a subquery of event ids)."""
    return Event.objects.exclude(pk__in=pks)


def events_recent_people(*, limit: int) -> list[tuple[str | None, str, str]]:
    """(user id, session id, item external id) of the `limit` newest events on an item, newest first (through
    the timestamp index; no DISTINCT over the whole table): the promotion preview's recent people."""
    return list(
        Event.objects.order_by("-timestamp")
        .exclude(item_external_id="")
        .values_list("user_id", "session_id", "item_external_id")[:limit]
    )


def events_for_training(*, session_prefix: str) -> list[tuple[str, int, float, str]]:
    """Every event linked to a catalog item as (actor, item pk, epoch seconds, event type), oldest first:
    the actor is the user id, or `session_prefix` + the session id for an anonymous session. One raw query
    (the offline evaluation and training read the whole stream; model instances would cost more than it)."""
    with connection.cursor() as cur:
        cur.execute(
            f"""
            SELECT COALESCE(e.user_id, %s || e.session_id), e.item_id, extract(epoch FROM e.timestamp),
                   e.event_type
            FROM {Event._meta.db_table} e
            WHERE e.item_id IS NOT NULL AND (e.user_id IS NOT NULL OR e.session_id <> '')
            ORDER BY e.timestamp, e.id
            """,
            [session_prefix],
        )
        return [(actor, int(item), float(ts), kind) for actor, item, ts, kind in cur.fetchall()]


def events_fingerprint() -> tuple[int, str]:
    """The number of events and an md5 over each one's id, item and time (a dataset's identity)."""
    with connection.cursor() as cur:
        cur.execute(
            f"""
            SELECT count(*), COALESCE(md5(string_agg(event_id || ':' || COALESCE(item_id::text, '') || ':'
                                                     || extract(epoch FROM timestamp)::text, ',' ORDER BY id)), '')
            FROM {Event._meta.db_table}
            """
        )
        count, digest = cur.fetchone()
    return int(count), digest

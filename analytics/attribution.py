"""Attribution: which served list earned a click, an add-to-cart, a purchase.

- A click or add-to-cart carrying a `recommendation_id` is credited to that served list, with the list's
  surface and scenario and the position of the item (the event's own `position` when it sent one,
  otherwise the item's 1-based place in the list). An id that no served list has is still recorded, with
  `list_known=False`: the event itself is stored by ingestion either way.
- A purchase of the same item by the same user, or in the same session, within the attribution window
  after an attributed click or add-to-cart is a conversion of that list; revenue = value x quantity
  (quantity 1 when absent).

Everything here is idempotent (one row per event and kind), so the periodic sweep, a retried task and the
rollup can all run it over the same events.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction

from analytics.models import Attribution, AttributionCursor
from analytics.served import served_lists_by_id
from interactions.models import Event, EventType

# Events are attributed in id ranges of this size: 5,000 events with recommendation ids take ~0.3 s
# (one served-list lookup, one bulk insert) on the embedded Postgres, 2 shared cores.
ATTRIBUTION_BATCH_SIZE = 5000
# Ids are allocated before commit, so an event with a lower id can become visible after the cursor has
# passed it. The sweep re-reads events received within this margin; attribution is idempotent.
SWEEP_OVERLAP = timedelta(minutes=10)
# ... looking at most this many ids behind the cursor (20 concurrent batches of 1,000 events).
SWEEP_OVERLAP_IDS = 20_000

_CLICK_TYPES = (EventType.CLICK, EventType.ADD_TO_CART)


def attribution_window() -> timedelta:
    return timedelta(hours=float(getattr(settings, "RECSYS_ATTRIBUTION_WINDOW_HOURS", 24)))


def clicks_attribute(*, events: list[Event]) -> int:
    """Credit clicks/add-to-carts that carry a recommendation_id to their served lists. Returns the
    number of new attribution rows (0 for events attributed before)."""
    events = [e for e in events if e.recommendation_id and e.event_type in _CLICK_TYPES]
    if not events:
        return 0
    lists = served_lists_by_id(recommendation_ids=[e.recommendation_id for e in events])
    rows = []
    for event in events:
        served = lists.get(event.recommendation_id)
        position = event.position
        if position is None and served is not None and event.item_id in served.item_pks:
            position = served.item_pks.index(event.item_id) + 1
        rows.append(
            Attribution(
                event=event,
                kind=event.event_type,
                recommendation_id=event.recommendation_id,
                list_known=served is not None,
                surface=served.surface if served else event.surface,
                scenario=served.scenario if served else "",
                position=position,
                item_id=event.item_id,
                occurred_at=event.timestamp,
            )
        )
    before = Attribution.objects.filter(event__in=events).count()
    Attribution.objects.bulk_create(rows, ignore_conflicts=True)
    return Attribution.objects.filter(event__in=events).count() - before


# The latest attributed click of the same item by the same user or session within the window before the
# purchase. One statement for a whole range; the partial index attribution_click_item serves the lateral.
_CONVERSIONS_SQL = """
INSERT INTO analytics_attribution (event_id, kind, recommendation_id, list_known, surface, scenario, position,
                                   item_id, source_event_id, revenue, occurred_at, created_at, updated_at)
SELECT p.id, 'conversion', c.recommendation_id, TRUE, c.surface, c.scenario, c.position, p.item_id,
       c.event_id, COALESCE(p.value, 0) * COALESCE(p.quantity, 1), p.timestamp, now(), now()
FROM interactions_event p
CROSS JOIN LATERAL (
    SELECT a.recommendation_id, a.surface, a.scenario, a.position, a.event_id
    FROM analytics_attribution a
    JOIN interactions_event ce ON ce.id = a.event_id
    WHERE a.item_id = p.item_id
      AND a.kind IN ('click', 'add_to_cart') AND a.list_known
      AND a.occurred_at <= p.timestamp AND a.occurred_at >= p.timestamp - %(window)s
      AND ((p.user_id IS NOT NULL AND ce.user_id = p.user_id)
           OR (p.session_id <> '' AND ce.session_id = p.session_id))
    ORDER BY a.occurred_at DESC, a.id DESC
    LIMIT 1
) c
WHERE p.event_type = 'purchase' AND p.item_id IS NOT NULL AND {where}
ON CONFLICT (event_id, kind) DO NOTHING
"""


def conversions_attribute(
    *, pk_range: tuple[int, int] | None = None, between: tuple[datetime, datetime] | None = None
) -> int:
    """Credit purchases (by event id range, or by their timestamp in [start, end)) to the attributed
    click they follow. Returns the number of new conversion rows."""
    params: dict = {"window": attribution_window()}
    if pk_range is not None:
        where = "p.id > %(lo)s AND p.id <= %(hi)s"
        params.update(lo=pk_range[0], hi=pk_range[1])
    elif between is not None:
        where = "p.timestamp >= %(start)s AND p.timestamp < %(end)s"
        params.update(start=between[0], end=between[1])
    else:
        raise ValueError("pk_range or between is required")
    with connection.cursor() as cur:
        cur.execute(_CONVERSIONS_SQL.format(where=where), params)
        return cur.rowcount


def events_attribute(*, pk_range: tuple[int, int]) -> dict[str, int]:
    """Attribute every event with lo < id <= hi: clicks first, so purchases in the same range can
    convert them."""
    lo, hi = pk_range
    events = list(
        Event.objects.filter(
            pk__gt=lo, pk__lte=hi, recommendation_id__isnull=False, event_type__in=_CLICK_TYPES
        ).order_by("pk")
    )
    clicks = clicks_attribute(events=events)
    conversions = conversions_attribute(pk_range=(lo, hi))
    return {"clicks": clicks, "conversions": conversions}


def events_attribute_between(*, start: datetime, end: datetime) -> dict[str, int]:
    """Attribute every click and purchase that happened in [start, end) (the rollup's and the on-demand
    metrics' catch-up for anything the sweep has not reached yet)."""
    events = list(
        Event.objects.filter(
            timestamp__gte=start,
            timestamp__lt=end,
            recommendation_id__isnull=False,
            event_type__in=_CLICK_TYPES,
        )
    )
    clicks = clicks_attribute(events=events)
    return {"clicks": clicks, "conversions": conversions_attribute(between=(start, end))}


def events_attribute_recent(*, now: datetime | None = None) -> dict[str, int]:
    """The sweep: attribute events past the cursor (and the overlap margin behind it), then move the
    cursor. Runs one at a time: the cursor row is locked for the duration."""
    from django.utils import timezone

    now = now or timezone.now()
    totals = {"clicks": 0, "conversions": 0}
    with transaction.atomic():
        cursor, _ = AttributionCursor.objects.select_for_update().get_or_create(name="events")
        # bounded by id (an index range scan), so the sweep stays cheap on a large event table
        late = Event.objects.filter(
            pk__gt=cursor.last_event_pk - SWEEP_OVERLAP_IDS,
            pk__lte=cursor.last_event_pk,
            received_at__gte=now - SWEEP_OVERLAP,
        )
        first_late = late.order_by("pk").values_list("pk", flat=True).first()
        lo = min(cursor.last_event_pk, first_late - 1) if first_late is not None else cursor.last_event_pk
        hi = Event.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        while lo < hi:
            upper = min(lo + ATTRIBUTION_BATCH_SIZE, hi)
            for key, count in events_attribute(pk_range=(lo, upper)).items():
                totals[key] += count
            lo = upper
        cursor.last_event_pk = max(cursor.last_event_pk, hi)
        cursor.save(update_fields=["last_event_pk", "updated_at"])
    return totals

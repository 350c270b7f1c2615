"""Attribution: which served list earned a click, an add-to-cart, a purchase.

- A click or add-to-cart carrying a `recommendation_id` is credited to that served list, with the list's
  surface and scenario and the position of the item (the event's own `position` when it sent one,
  otherwise the item's 1-based place in the list). An id that no served list has is still recorded, with
  `list_known=False`: the event itself is stored by ingestion either way. But serving writes its lists
  off the request path, a little late (recommendations/served_log.py): a click whose list is not there
  yet is held, not flagged, until RECSYS_SERVED_LOG_GRACE_SECONDS after the event was received, and the
  sweep's cursor stays behind the first held click so that the next sweep attributes it.
- A purchase of the same item by the same user, or in the same session, within the attribution window
  after an attributed click or add-to-cart is a conversion of that list; revenue = value x quantity
  (quantity 1 when absent).
- Each row carries the served list's A/B experiment and arm (`experiment`, `variant`; a conversion those of
  its click), so clicks, conversions and revenue are credited to the arm (analytics/experiments.py).

Everything here is idempotent (one row per event and kind), so the periodic sweep, a retried task and the
rollup can all run it over the same events. An event that cannot be attributed (its revenue overflows, say:
it was stored before the validator's caps) is dead-lettered and skipped; the others in its batch are
attributed and the cursor moves on (analytics/deadletters.py).
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from analytics.deadletters import (
    dead_letter_keys_pending,
    dead_letter_keys_skipped,
    dead_letters_resolve,
    deferred_constraints_check,
    rows_each,
)
from analytics.models import Attribution, AttributionCursor, DeadLetterSweep
from analytics.served import served_lists_by_id
from interactions.selectors import (
    LIST_CLICK_TYPES,
    event_pk_first_received,
    event_pk_last,
    event_pks_in,
    events_list_clicks,
    events_purchase_pks,
)

# Events are attributed in id ranges of this size: 5,000 events with recommendation ids take ~0.3 s
# (one served-list lookup, one bulk insert) on the embedded Postgres, 2 shared cores.
ATTRIBUTION_BATCH_SIZE = 5000
# Ids are allocated before commit, so an event with a lower id can become visible after the cursor has
# passed it. The sweep re-reads events received within this margin; attribution is idempotent.
SWEEP_OVERLAP = timedelta(minutes=10)
# ... looking at most this many ids behind the cursor (20 concurrent batches of 1,000 events).
SWEEP_OVERLAP_IDS = 20_000

logger = logging.getLogger(__name__)


def attribution_window() -> timedelta:
    return timedelta(hours=float(getattr(settings, "RECSYS_ATTRIBUTION_WINDOW_HOURS", 24)))


def served_log_grace() -> timedelta:
    """How long a click waits for its served list to be logged before the list is called unknown."""
    return timedelta(seconds=float(getattr(settings, "RECSYS_SERVED_LOG_GRACE_SECONDS", 0)))


def clicks_attribute(*, events: list, now: datetime | None = None) -> int:
    """Credit clicks/add-to-carts that carry a recommendation_id to their served lists. Returns the
    number of new attribution rows (0 for events attributed before). A click whose list is not logged
    and that was received less than the grace period before `now` is held: not attributed yet."""
    events = [e for e in events if e.recommendation_id and e.event_type in LIST_CLICK_TYPES]
    if not events:
        return 0
    lists = served_lists_by_id(recommendation_ids=[e.recommendation_id for e in events])
    cutoff = (now or timezone.now()) - served_log_grace()
    events = [e for e in events if e.recommendation_id in lists or e.received_at <= cutoff]
    if not events:
        return 0
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
                experiment=served.experiment if served else None,
                variant=served.variant if served else "",
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
                                   experiment, variant, item_id, source_event_id, revenue, occurred_at,
                                   created_at, updated_at)
SELECT p.id, 'conversion', c.recommendation_id, TRUE, c.surface, c.scenario, c.position, c.experiment,
       c.variant, p.item_id, c.event_id, COALESCE(p.value, 0) * COALESCE(p.quantity, 1), p.timestamp, now(),
       now()
FROM interactions_event p
CROSS JOIN LATERAL (
    SELECT a.recommendation_id, a.surface, a.scenario, a.position, a.experiment, a.variant, a.event_id
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
    *,
    pk_range: tuple[int, int] | None = None,
    between: tuple[datetime, datetime] | None = None,
    exclude: Collection[int] = (),
) -> int:
    """Credit purchases (by event id range, or by their timestamp in [start, end)), except the `exclude`d
    ids, to the attributed click they follow. Returns the number of new conversion rows."""
    params: dict = {"window": attribution_window(), "exclude": list(exclude)}
    if pk_range is not None:
        where = "p.id > %(lo)s AND p.id <= %(hi)s"
        params.update(lo=pk_range[0], hi=pk_range[1])
    elif between is not None:
        where = "p.timestamp >= %(start)s AND p.timestamp < %(end)s"
        params.update(start=between[0], end=between[1])
    else:
        raise ValueError("pk_range or between is required")
    where += " AND NOT (p.id = ANY(%(exclude)s::bigint[]))"
    with connection.cursor() as cur:
        cur.execute(_CONVERSIONS_SQL.format(where=where), params)
        return cur.rowcount


def _scope(*, pk_range: tuple[int, int] | None, between: tuple[datetime, datetime] | None) -> Q:
    if pk_range is not None:
        return Q(pk__gt=pk_range[0], pk__lte=pk_range[1])
    assert between is not None
    return Q(timestamp__gte=between[0], timestamp__lt=between[1])


def _attribute(
    *,
    pk_range: tuple[int, int] | None = None,
    between: tuple[datetime, datetime] | None = None,
    skip: set[int],
    now: datetime | None = None,
) -> dict[str, int]:
    """Clicks first, so purchases in the same scope can convert them."""
    clicks = list(
        events_list_clicks(scope=_scope(pk_range=pk_range, between=between))
        .exclude(pk__in=skip)
        .order_by("pk")
    )
    return {
        "clicks": clicks_attribute(events=clicks, now=now),
        "conversions": conversions_attribute(pk_range=pk_range, between=between, exclude=skip),
    }


def event_attribute(*, pk: int) -> dict[str, int]:
    """Attribute one event (a dead letter's retry). Raises what the database raises."""
    return _attribute(pk_range=(pk - 1, pk), skip=set())


def _attribute_batch(
    *,
    pk_range: tuple[int, int] | None = None,
    between: tuple[datetime, datetime] | None = None,
    now: datetime | None = None,
) -> dict[str, int]:
    """Attribute a scope in one go; if that fails, event by event, dead-lettering the events that fail
    (analytics/deadletters.py). Events dead-lettered DEAD_LETTER_MAX_ATTEMPTS times are skipped."""
    sweep = DeadLetterSweep.ATTRIBUTION
    skip = {int(key) for key in dead_letter_keys_skipped(sweep=sweep)}
    scope = _scope(pk_range=pk_range, between=between)
    try:
        with transaction.atomic():
            counts = _attribute(pk_range=pk_range, between=between, skip=skip, now=now)
            deferred_constraints_check()
    except Exception as exc:  # noqa: BLE001 - one bad event must not stop the batch: redo it row by row
        logger.warning(
            "attribution batch %s failed (%s); redoing it event by event", pk_range or between, exc
        )
    else:
        pending = [int(key) for key in dead_letter_keys_pending(sweep=sweep)]
        if pending:  # dead-lettered before, went through this time
            done = event_pks_in(scope=scope, pks=pending)
            dead_letters_resolve(sweep=sweep, keys=[str(pk) for pk in done])
        return counts

    counts = {"clicks": 0, "conversions": 0}

    def click(event) -> None:
        counts["clicks"] += clicks_attribute(events=[event], now=now)

    def purchase(pk: int) -> None:
        counts["conversions"] += conversions_attribute(pk_range=(pk - 1, pk))

    purchases = events_purchase_pks(scope=scope, exclude=skip)
    with transaction.atomic():  # the on-demand metrics call this outside a transaction
        # all clicks first, as in one go: a purchase may follow a click with a higher id
        rows_each(
            sweep=sweep,
            rows=events_list_clicks(scope=scope).exclude(pk__in=skip).order_by("pk"),
            key=_pk,
            process=click,
        )
        rows_each(sweep=sweep, rows=purchases, key=str, process=purchase)
    return counts


def _pk(event) -> str:
    return str(event.pk)


def events_attribute(*, pk_range: tuple[int, int], now: datetime | None = None) -> dict[str, int]:
    """Attribute every event with lo < id <= hi (an event that cannot be is dead-lettered)."""
    return _attribute_batch(pk_range=pk_range, now=now)


def _first_held(*, pk_range: tuple[int, int], now: datetime) -> int | None:
    """The lowest id in the range of a click still waiting for its served list (clicks_attribute)."""
    recent = list(
        events_list_clicks(
            scope=Q(pk__gt=pk_range[0], pk__lte=pk_range[1], received_at__gt=now - served_log_grace())
        )
        .order_by("pk")
        .values_list("pk", "recommendation_id")
    )
    if not recent:
        return None
    known = served_lists_by_id(recommendation_ids=[rec_id for _, rec_id in recent if rec_id is not None])
    return next((pk for pk, rec_id in recent if rec_id not in known), None)


def events_attribute_between(*, start: datetime, end: datetime) -> dict[str, int]:
    """Attribute every click and purchase that happened in [start, end) (the rollup's and the on-demand
    metrics' catch-up for anything the sweep has not reached yet; an event that cannot be is
    dead-lettered)."""
    return _attribute_batch(between=(start, end))


def events_attribute_recent(*, now: datetime | None = None) -> dict[str, int]:
    """The sweep: attribute events past the cursor (and the overlap margin behind it), then move the
    cursor. Runs one at a time: the cursor row is locked for the duration. An event that cannot be
    attributed is dead-lettered and the cursor moves past it all the same."""
    now = now or timezone.now()
    totals = {"clicks": 0, "conversions": 0}
    with transaction.atomic():
        cursor, _ = AttributionCursor.objects.select_for_update().get_or_create(name="events")
        # bounded by id (an index range scan), so the sweep stays cheap on a large event table
        first_late = event_pk_first_received(
            pk_gt=cursor.last_event_pk - SWEEP_OVERLAP_IDS,
            pk_lte=cursor.last_event_pk,
            received_since=now - SWEEP_OVERLAP,
        )
        lo = min(cursor.last_event_pk, first_late - 1) if first_late is not None else cursor.last_event_pk
        hi = event_pk_last()
        start = lo
        while lo < hi:
            upper = min(lo + ATTRIBUTION_BATCH_SIZE, hi)
            for key, count in events_attribute(pk_range=(lo, upper), now=now).items():
                totals[key] += count
            lo = upper
        # a held click is not behind the overlap margin's id bound next time: the cursor waits for it
        held = _first_held(pk_range=(start, hi), now=now) if start < hi else None
        # (back, if the held click was in the overlap: re-reading is idempotent)
        cursor.last_event_pk = held - 1 if held is not None else max(cursor.last_event_pk, hi)
        cursor.save(update_fields=["last_event_pk", "updated_at"])
    return totals

"""Retention of raw events: `RECSYS_EVENT_RETENTION_DAYS` (0 = keep forever, the default).

An event is pruned once it is older than the retention period AND everything derived from it is done:
- attributed (its id is at or behind the attribution sweep's cursor), so its clicks and conversions are in
  the rollups. The rollup beat rewrites today and yesterday only, so a day is final once it is two days
  old; a retention below MIN_RETENTION_DAYS is refused.
- folded into its user's vector (`vector_applied`), or with nothing to fold: an anonymous event, or one
  whose item has no vector (unknown or deactivated long ago).
What stays: DailyMetric / DailyItemMetric rollups, user vectors and counters, item popularity already
computed. The Attribution rows of pruned events go with them (the rollups hold their totals).

The served-list log (`recommendations.ServedList`, which holds user and session ids) follows, after the
events: a list is pruned once it is older than the retention period AND the attribution window, and no kept
event or attribution carries its recommendation_id (so no click can still be credited to it, and its day's
impressions are final in the rollups).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from analytics.attribution import attribution_window
from analytics.models import Attribution, AttributionCursor
from analytics.served import served_lists_unreferenced
from interactions.selectors import events_other_than
from interactions.selectors import events_prunable as events_prunable_before
from interactions.services import events_delete

logger = logging.getLogger(__name__)

MIN_RETENTION_DAYS = 3
# Events deleted per transaction: short transactions keep ingestion's inserts and the sweeps unblocked.
# 5,000 events (with their attribution rows) took ~0.4 s per batch on the embedded Postgres, 2 shared cores.
PRUNE_BATCH_SIZE = 5000
# Served lists deleted per statement (each statement its own short transaction): 5,000 lists of 10 items,
# with the two reference probes per list, took ~0.1 s per batch (0.2 s at most) on the embedded Postgres,
# 2 shared cores (200,000 lists, 50,000 clicks on them).
SERVED_PRUNE_BATCH_SIZE = 5000


@dataclass
class PruneResult:
    events: int = 0
    served_lists: int = 0


def _cutoff(*, days: int, now: datetime | None) -> datetime:
    if days < MIN_RETENTION_DAYS:
        raise ValueError(f"retention must be at least {MIN_RETENTION_DAYS} days (rollups are final after 2)")
    return (now or timezone.now()) - timedelta(days=days)


def events_prunable(*, days: int, now: datetime | None = None):
    """The events `events_prune` would delete now (a queryset)."""
    cutoff = _cutoff(days=days, now=now)
    attributed_until = (
        AttributionCursor.objects.filter(name="events").values_list("last_event_pk", flat=True).first() or 0
    )
    return events_prunable_before(before=cutoff, attributed_until=attributed_until)


def events_prune(*, days: int, now: datetime | None = None, batch_size: int = PRUNE_BATCH_SIZE) -> int:
    """Delete prunable events in batches of `batch_size` (one transaction each); returns how many."""
    prunable = events_prunable(days=days, now=now)
    total = 0
    while True:
        pks = list(prunable.order_by("pk").values_list("pk", flat=True)[:batch_size])
        if not pks:
            break
        with transaction.atomic():
            Attribution.objects.filter(Q(event_id__in=pks) | Q(source_event_id__in=pks)).delete()
            total += events_delete(pks=pks)
    if total:
        logger.info("retention: pruned %d events older than %d days", total, days)
    return total


def served_lists_prunable(*, days: int, now: datetime | None = None):
    """The served lists `served_lists_prune` would delete once the prunable events are gone (a queryset, or
    None when serving is not installed): older than the retention and the attribution window, and carried
    by no event that stays and no attribution row that stays."""
    now = now or timezone.now()
    cutoff = min(_cutoff(days=days, now=now), now - attribution_window())
    gone = events_prunable(days=days, now=now).values("pk")
    return served_lists_unreferenced(
        created_before=cutoff,
        events=events_other_than(pks=gone),
        attributions=Attribution.objects.exclude(event__in=gone).exclude(source_event__in=gone),
    )


def served_lists_prune(
    *, days: int, now: datetime | None = None, batch_size: int = SERVED_PRUNE_BATCH_SIZE
) -> int:
    """Delete prunable served lists in batches of `batch_size`, oldest first; returns how many. One DELETE
    statement per batch, so the "no kept event carries it" check is made again at delete time: a click on
    an old list that committed meanwhile keeps it."""
    prunable = served_lists_prunable(days=days, now=now)
    if prunable is None:
        return 0
    model = prunable.model
    total = 0
    while True:
        batch = prunable.order_by("created_at").values("pk")[:batch_size]
        deleted = model.objects.filter(pk__in=batch).delete()[1].get(model._meta.label, 0)
        total += deleted
        if deleted < batch_size:
            break
    if total:
        logger.info("retention: pruned %d served lists older than %d days", total, days)
    return total


def retention_prune(*, days: int, now: datetime | None = None) -> PruneResult:
    """The whole retention run: events first, then the served lists no kept event refers to any more."""
    return PruneResult(
        events=events_prune(days=days, now=now), served_lists=served_lists_prune(days=days, now=now)
    )

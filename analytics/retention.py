"""Retention of raw events: `RECSYS_EVENT_RETENTION_DAYS` (0 = keep forever, the default).

An event is pruned once it is older than the retention period AND everything derived from it is done:
- attributed (its id is at or behind the attribution sweep's cursor), so its clicks and conversions are in
  the rollups. The rollup beat rewrites today and yesterday only, so a day is final once it is two days
  old; a retention below MIN_RETENTION_DAYS is refused.
- folded into its user's vector (`vector_applied`), or with nothing to fold: an anonymous event, or one
  whose item has no vector (unknown or deactivated long ago).
What stays: DailyMetric / DailyItemMetric rollups, user vectors and counters, item popularity already
computed. The Attribution rows of pruned events go with them (the rollups hold their totals).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from analytics.models import Attribution, AttributionCursor
from interactions.models import Event

logger = logging.getLogger(__name__)

MIN_RETENTION_DAYS = 3
# Events deleted per transaction: short transactions keep ingestion's inserts and the sweeps unblocked.
# 5,000 events (with their attribution rows) took ~0.4 s per batch on the embedded Postgres, 2 shared cores.
PRUNE_BATCH_SIZE = 5000


def events_prunable(*, days: int, now: datetime | None = None):
    """The events `events_prune` would delete now (a queryset)."""
    if days < MIN_RETENTION_DAYS:
        raise ValueError(f"retention must be at least {MIN_RETENTION_DAYS} days (rollups are final after 2)")
    cutoff = (now or timezone.now()) - timedelta(days=days)
    attributed_until = (
        AttributionCursor.objects.filter(name="events").values_list("last_event_pk", flat=True).first() or 0
    )
    folded = Q(vector_applied=True) | Q(user_id__isnull=True) | Q(item__isnull=True) | Q(item__embedding=None)
    return Event.objects.filter(folded, timestamp__lt=cutoff, pk__lte=attributed_until)


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
            total += Event.objects.filter(pk__in=pks).delete()[1].get(Event._meta.label, 0)
    if total:
        logger.info("retention: pruned %d events older than %d days", total, days)
    return total

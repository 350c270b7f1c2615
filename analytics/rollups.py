"""Live metrics over served lists and attributions: computed on demand for any window
(`window_metrics_compute`) and rolled up per surface, scenario and day (`daily_metrics_rollup`; Celery beat
runs `daily_metrics_rollups`, where a day that fails is dead-lettered and the others still roll up)."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import numpy as np
from django.db import transaction
from django.db.models import Count, Q, Sum

from analytics import metrics
from analytics.attribution import events_attribute_between
from analytics.deadletters import dead_letter_keys_skipped, rows_each
from analytics.models import Attribution, AttributionKind, DailyItemMetric, DailyMetric, DeadLetterSweep
from analytics.served import served_lists_between
from catalog.selectors import item_pks_stored, item_vectors_iter, items_active_pks
from interactions.selectors import item_actor_counts

# Slice key for "every surface / every scenario".
ALL = "*"


@dataclass
class SliceMetrics:
    surface: str
    scenario: str
    lists_served: int = 0
    impressions: int = 0
    clicks: int = 0
    add_to_carts: int = 0
    conversions: int = 0
    revenue: Decimal = Decimal(0)
    distinct_items: int = 0
    catalog_size: int = 0
    coverage: float = 0.0
    diversity: float | None = None
    gini: float = 0.0
    novelty: float | None = None
    item_impressions: Counter = field(default_factory=Counter, repr=False)

    @property
    def ctr(self) -> float:
        return metrics.ctr(clicks=self.clicks, impressions=self.impressions)

    @property
    def conversion_rate(self) -> float:
        return metrics.conversion_rate(conversions=self.conversions, clicks=self.clicks)


def _day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time.min, tzinfo=UTC)
    return start, start + timedelta(days=1)


def window_metrics_compute(*, start: datetime, end: datetime) -> dict[tuple[str, str], SliceMetrics]:
    """Every live metric for the lists served in [start, end), per (surface, scenario), per (surface, ALL)
    and the (ALL, ALL) total. Clicks and conversions are the attributions whose event happened in the window;
    the window's events are attributed first (idempotent), so nothing the sweep has not reached is missed."""
    events_attribute_between(start=start, end=end)
    active_pks = items_active_pks()
    catalog_size = len(active_pks)
    slices: dict[tuple[str, str], SliceMetrics] = {}
    lists_by_slice: dict[tuple[str, str], list[tuple[int, ...]]] = defaultdict(list)

    def slice_for(key: tuple[str, str]) -> SliceMetrics:
        if key not in slices:
            slices[key] = SliceMetrics(surface=key[0], scenario=key[1], catalog_size=catalog_size)
        return slices[key]

    for served in served_lists_between(start=start, end=end):
        for key in ((served.surface, served.scenario), (served.surface, ALL), (ALL, ALL)):
            s = slice_for(key)
            s.lists_served += 1
            s.impressions += len(served.item_pks)
            s.item_impressions.update(served.item_pks)
            lists_by_slice[key].append(served.item_pks)

    attributed = (
        Attribution.objects.filter(occurred_at__gte=start, occurred_at__lt=end, list_known=True)
        .values_list("surface", "scenario", "kind")
        .annotate(n=Count("id"), revenue=Sum("revenue"))
    )
    for surface, scenario, kind, n, revenue in attributed:
        for key in ((surface, scenario), (surface, ALL), (ALL, ALL)):
            s = slice_for(key)
            if kind == AttributionKind.CLICK:
                s.clicks += n
            elif kind == AttributionKind.ADD_TO_CART:
                s.add_to_carts += n
            else:
                s.conversions += n
                s.revenue += revenue or Decimal(0)

    shown = {pk for s in slices.values() for pk in s.item_impressions}
    vectors = {pk: np.asarray(vec, dtype=np.float32) for pk, vec in item_vectors_iter(item_pks=list(shown))}
    # the reference distribution novelty is measured against: distinct users per item, and how many
    popularity, n_users = item_actor_counts(until=end)
    active = set(active_pks)
    for key, s in slices.items():
        s.distinct_items = len(s.item_impressions)
        s.coverage = metrics.coverage(recommended=set(s.item_impressions) & active, catalog_size=catalog_size)
        counts = [s.item_impressions.get(pk, 0) for pk in active_pks]
        s.gini = metrics.gini(counts)
        s.diversity = metrics.mean_diversity(
            np.array([vectors[pk] for pk in pks if pk in vectors]) for pks in lists_by_slice[key]
        )
        shown_items = [pk for pks in lists_by_slice[key] for pk in pks]
        s.novelty = metrics.novelty(recommended=shown_items, popularity=popularity, n_users=n_users)
    return slices


def daily_metrics_rollups(*, days: list[date]) -> dict[str, int | None]:
    """The rollup sweep: roll up each day in its own savepoint. A day that fails is dead-lettered (None in
    the answer) and the other days are still rolled up; a day that failed DEAD_LETTER_MAX_ATTEMPTS times is
    skipped (also None) until it is retried from admin. Runs in one transaction."""
    sweep = DeadLetterSweep.DAILY_METRICS_ROLLUP
    skipped = dead_letter_keys_skipped(sweep=sweep)
    written: dict[str, int | None] = {str(day): None for day in days}

    def rollup(day: date) -> None:
        written[str(day)] = daily_metrics_rollup(day=day)

    with transaction.atomic():
        rows_each(sweep=sweep, rows=[d for d in days if str(d) not in skipped], key=str, process=rollup)
    return written


def daily_metrics_rollup(*, day: date) -> int:
    """Write DailyMetric rows (per surface and scenario, per surface, and the ALL total) and DailyItemMetric rows
    for `day`, replacing what an earlier run wrote. Attributes that day's clicks and purchases first, so
    anything the sweep missed is caught. Returns the number of slices written."""
    start, end = _day_bounds(day)
    slices = window_metrics_compute(start=start, end=end)

    per_item: dict[int, dict] = defaultdict(lambda: {"clicks": 0, "conversions": 0, "revenue": Decimal(0)})
    item_rows = (
        Attribution.objects.filter(
            occurred_at__gte=start, occurred_at__lt=end, list_known=True, item__isnull=False
        )
        .values("item_id")
        .annotate(
            clicks=Count("id", filter=Q(kind=AttributionKind.CLICK)),
            conversions=Count("id", filter=Q(kind=AttributionKind.CONVERSION)),
            revenue=Sum("revenue", filter=Q(kind=AttributionKind.CONVERSION)),
        )
    )
    for row in item_rows:
        per_item[row["item_id"]].update(
            clicks=row["clicks"], conversions=row["conversions"], revenue=row["revenue"] or Decimal(0)
        )
    impressions = slices[(ALL, ALL)].item_impressions if (ALL, ALL) in slices else Counter()
    known_items = item_pks_stored(item_pks=list(set(impressions) | set(per_item)))

    with transaction.atomic():
        DailyMetric.objects.filter(day=day).delete()
        DailyMetric.objects.bulk_create(
            DailyMetric(
                day=day,
                surface=s.surface,
                scenario=s.scenario,
                lists_served=s.lists_served,
                impressions=s.impressions,
                clicks=s.clicks,
                add_to_carts=s.add_to_carts,
                conversions=s.conversions,
                revenue=s.revenue,
                distinct_items=s.distinct_items,
                catalog_size=s.catalog_size,
                coverage=s.coverage,
                diversity=s.diversity,
                gini=s.gini,
                novelty=s.novelty,
            )
            for s in slices.values()
        )
        DailyItemMetric.objects.filter(day=day).delete()
        DailyItemMetric.objects.bulk_create(
            (
                DailyItemMetric(
                    day=day,
                    item_id=pk,
                    impressions=impressions.get(pk, 0),
                    clicks=per_item[pk]["clicks"] if pk in per_item else 0,
                    conversions=per_item[pk]["conversions"] if pk in per_item else 0,
                    revenue=per_item[pk]["revenue"] if pk in per_item else Decimal(0),
                )
                for pk in sorted(known_items)
            ),
            batch_size=5000,
        )
    return len(slices)

"""Reads of the served-list log (`recommendations.ServedList`, written by serving) in the one shape that
analytics needs, and the retention's selection of old lists. Everything analytics knows about that model's
columns is in this module."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from django.apps import apps
from django.db.models import Aggregate, Count, Exists, FloatField, OuterRef, QuerySet

# Served lists are read in pages of this many rows; a page of 10-item lists is ~2 MB in Python and takes
# ~40 ms to fetch on the embedded Postgres (2 cores, shared machine).
SERVED_PAGE_SIZE = 5000


@dataclass(frozen=True)
class ServedListView:
    recommendation_id: uuid.UUID
    surface: str
    scenario: str
    item_pks: tuple[int, ...]
    created_at: datetime
    experiment: int | None = None
    variant: str = ""


def _model():
    try:
        return apps.get_model("recommendations", "ServedList")
    except LookupError:  # serving not installed: every recommendation_id is unknown
        return None


_FIELDS = ("recommendation_id", "surface", "scenario", "item_pks", "created_at", "experiment", "variant")


def _view(row: tuple) -> ServedListView:
    rec_id, surface, scenario, item_pks, created_at, experiment, variant = row
    return ServedListView(
        rec_id, surface or "", scenario or "", tuple(item_pks or ()), created_at, experiment, variant or ""
    )


def served_lists_by_id(*, recommendation_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, ServedListView]:
    model = _model()
    ids = list(set(recommendation_ids))
    if model is None or not ids:
        return {}
    rows = model.objects.filter(recommendation_id__in=ids).values_list(*_FIELDS)
    return {row[0]: _view(row) for row in rows}


def served_lists_between(*, start: datetime, end: datetime) -> Iterator[ServedListView]:
    """Every list served in [start, end), streamed in pages."""
    model = _model()
    if model is None:
        return
    rows = (
        model.objects.filter(created_at__gte=start, created_at__lt=end)
        .order_by()
        .values_list(*_FIELDS)
        .iterator(chunk_size=SERVED_PAGE_SIZE)
    )
    for row in rows:
        yield _view(row)


def served_lists_unreferenced(*, created_before: datetime, events: QuerySet, attributions: QuerySet):
    """The lists served before `created_before` whose recommendation_id no row of `events`
    (interactions.Event) and no row of `attributions` (analytics.Attribution) carries: a queryset, or None
    when serving is not installed. Both checks are index probes (event_recommendation, attribution_list)."""
    model = _model()
    if model is None:
        return None
    return model.objects.filter(created_at__lt=created_before).filter(
        ~Exists(events.filter(recommendation_id=OuterRef("recommendation_id"))),
        ~Exists(attributions.filter(recommendation_id=OuterRef("recommendation_id"))),
    )


def served_lists_of_experiment(*, experiment_id: int) -> Iterator[tuple[str, tuple[int, ...]]]:
    """(variant, item pks) of every list served in this A/B experiment, newest first, streamed in pages
    (the partial index servedlist_experiment)."""
    model = _model()
    if model is None:
        return
    rows = (
        model.objects.filter(experiment=experiment_id)
        .order_by("-created_at")
        .values_list("variant", "item_pks")
        .iterator(chunk_size=SERVED_PAGE_SIZE)
    )
    for variant, item_pks in rows:
        yield variant or "", tuple(item_pks or ())


@dataclass(frozen=True)
class Latency:
    """Serve times of an arm's lists, in milliseconds, over the lists that recorded one (`lists`)."""

    lists: int
    p50_ms: float
    p95_ms: float


class _PercentileCont(Aggregate):
    """Postgres `percentile_cont(fraction) WITHIN GROUP (ORDER BY x)`: the continuous percentile, linear
    interpolation between the two nearest ranks (numpy's default method, "linear")."""

    function = "percentile_cont"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression: str, *, fraction: float) -> None:
        super().__init__(expression, fraction=float(fraction))


def served_latency_of_experiment(*, experiment_id: int) -> dict[str, Latency]:
    """variant -> the p50 and p95 serve time of its lists in this A/B experiment, in one query; lists with
    no serve time (logged before it was recorded) are left out, and a variant with none is absent."""
    model = _model()
    if model is None:
        return {}
    rows = (
        model.objects.filter(experiment=experiment_id, latency_ms__isnull=False)
        .order_by()
        .values("variant")
        .annotate(
            lists=Count("latency_ms"),
            p50=_PercentileCont("latency_ms", fraction=0.5),
            p95=_PercentileCont("latency_ms", fraction=0.95),
        )
    )
    return {r["variant"] or "": Latency(r["lists"], r["p50"], r["p95"]) for r in rows}

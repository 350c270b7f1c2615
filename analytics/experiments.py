"""The A/B experiment report (/reports/experiments): per arm the lists served, CTR, conversion rate and
revenue per list with their 95% intervals, each arm against the control (analytics/experiment_stats.py),
a verdict for the metric the analyst asks about, and guardrails (coverage, diversity, and the p50 and p95
of the serve time the served-list log records per list; lists logged before it did are left out).

Served lists come from the served-list log's `experiment`/`variant` columns (analytics/served.py); clicks,
conversions and revenue from the attributions, which carry the list's experiment and arm
(analytics/attribution.py). The events of the experiment are attributed first (idempotent), so the report
does not wait for the sweep.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

import numpy as np
from django.db.models import Count, Sum
from django.utils import timezone

from analytics import experiment_stats as st
from analytics import metrics
from analytics.attribution import events_attribute_between
from analytics.models import Attribution, AttributionKind
from analytics.selectors import Table
from analytics.served import Latency, served_latency_of_experiment, served_lists_of_experiment
from catalog.selectors import items_active_count
from recommendations import selectors as serving_selectors

METRICS = {"ctr": "CTR", "conversion": "Conversion rate", "revenue": "Revenue per list"}
DEFAULT_METRIC = "ctr"
DEFAULT_MDE_PERCENT = 5.0
# Diversity is the mean intra-list diversity of each arm's newest lists, at most this many (the vectors
# of 2,000 lists of 10 items are read in one query of ~20,000 pks).
DIVERSITY_SAMPLE = 2000
# The report attributes the events of this last stretch itself before counting (the sweep did the rest).
CATCH_UP = timedelta(days=1)
# The latency cells of an arm none of whose lists recorded a serve time (all served before it was logged).
NO_DATA = "no data"


@dataclass
class ArmStats:
    name: str
    is_control: bool
    traffic_percent: int
    lists: int = 0
    impressions: int = 0
    clicked_lists: int = 0
    clicks: int = 0
    converted_lists: int = 0
    conversions: int = 0
    revenue: float = 0.0
    revenue_sq: float = 0.0  # the sum of each list's revenue squared (Welch's test)
    items: set[int] = field(default_factory=set)
    sample: list[tuple[int, ...]] = field(default_factory=list)
    latency: Latency | None = None  # None: no list of this arm recorded its serve time

    @property
    def ctr(self) -> st.Estimate:
        return st.proportion(self.clicked_lists, self.lists)

    @property
    def conversion(self) -> st.Estimate:
        return st.proportion(self.converted_lists, self.lists)

    @property
    def revenue_per_list(self) -> st.Estimate:
        return st.mean(self.revenue, self.revenue_sq, self.lists)


@dataclass
class Report:
    experiment: object
    arms: list[ArmStats]
    metric: str
    mde: float
    comparisons: dict[str, dict[str, st.Comparison]]  # arm -> metric -> against the control
    verdicts: dict[str, str]  # arm -> the verdict on the chosen metric
    tables: list[Table]
    catalog_size: int


def arms_collect(experiment) -> list[ArmStats]:
    """Counts per arm, from the served-list log and the attributions."""
    arms = {
        a.name: ArmStats(a.name, a.is_control, a.traffic_percent)
        for a in sorted(experiment.arms.all(), key=lambda a: (not a.is_control, a.name))
    }

    def arm(name: str) -> ArmStats:
        # a list logged under an arm since renamed or deleted is still counted, under its own name
        if name not in arms:
            arms[name] = ArmStats(name, False, 0)
        return arms[name]

    for variant, item_pks in served_lists_of_experiment(experiment_id=experiment.pk):
        a = arm(variant)
        a.lists += 1
        a.impressions += len(item_pks)
        a.items.update(item_pks)
        if len(a.sample) < DIVERSITY_SAMPLE:
            a.sample.append(item_pks)

    for name, latency in served_latency_of_experiment(experiment_id=experiment.pk).items():
        arm(name).latency = latency

    attributed = Attribution.objects.filter(experiment=experiment.pk, list_known=True)
    for row in (
        attributed.filter(kind__in=[AttributionKind.CLICK, AttributionKind.CONVERSION])
        .values("variant", "kind")
        .annotate(lists=Count("recommendation_id", distinct=True), n=Count("id"))
    ):
        a = arm(row["variant"])
        if row["kind"] == AttributionKind.CLICK:
            a.clicked_lists, a.clicks = row["lists"], row["n"]
        else:
            a.converted_lists, a.conversions = row["lists"], row["n"]
    per_list = (
        attributed.filter(kind=AttributionKind.CONVERSION)
        .values("variant", "recommendation_id")
        .annotate(revenue=Sum("revenue"))
    )
    for row in per_list:
        value = float(row["revenue"] or Decimal(0))
        a = arm(row["variant"])
        a.revenue += value
        a.revenue_sq += value * value
    return list(arms.values())


def experiment_report(*, experiment, metric: str = DEFAULT_METRIC, mde: float = 0.05) -> Report:
    """The whole report; `mde` is the minimum detectable effect, relative (0.05 = 5%)."""
    now = timezone.now()
    end = min(now, experiment.ends_at or now)
    # what the attribution sweep may not have reached yet (idempotent); older events it has
    events_attribute_between(start=max(experiment.starts_at, end - CATCH_UP), end=end)
    arms = arms_collect(experiment)
    control = next((a for a in arms if a.is_control), arms[0] if arms else None)
    comparisons: dict[str, dict[str, st.Comparison]] = {}
    verdicts: dict[str, str] = {}
    for a in arms:
        if control is None or a is control:
            continue
        comparisons[a.name] = {
            "ctr": st.compare_proportions(
                control.clicked_lists, control.lists, a.clicked_lists, a.lists, mde=mde
            ),
            "conversion": st.compare_proportions(
                control.converted_lists, control.lists, a.converted_lists, a.lists, mde=mde
            ),
            "revenue": st.compare_means(
                (control.revenue, control.revenue_sq, control.lists),
                (a.revenue, a.revenue_sq, a.lists),
                mde=mde,
            ),
        }
        verdicts[a.name] = st.verdict(comparisons[a.name][metric], arm=a.name)
    catalog_size = items_active_count()
    tables = [
        _arms_table(arms),
        _tests_table(comparisons, metric_order=[metric, *(m for m in METRICS if m != metric)], mde=mde),
        _guardrails_table(arms, catalog_size=catalog_size),
    ]
    return Report(experiment, arms, metric, mde, comparisons, verdicts, tables, catalog_size)


def _r(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(float(value), digits)


def _arms_table(arms: list[ArmStats]) -> Table:
    header = ["arm", "control", "traffic %", "lists served", "clicked lists", "CTR", "CTR CI low", "CTR CI high",
              "converted lists", "conversion rate", "conv. CI low", "conv. CI high", "revenue",
              "revenue per list", "rev./list CI low", "rev./list CI high"]  # fmt: skip
    rows = []
    for a in arms:
        ctr, conv, rev = a.ctr, a.conversion, a.revenue_per_list
        rows.append(
            (a.name, "yes" if a.is_control else "", a.traffic_percent, a.lists, a.clicked_lists,
             _r(ctr.value), _r(ctr.low), _r(ctr.high), a.converted_lists, _r(conv.value), _r(conv.low),
             _r(conv.high), _r(a.revenue, 2), _r(rev.value), _r(rev.low), _r(rev.high))
        )  # fmt: skip
    return Table("experiment_arms", "Arms: 95% confidence intervals", header, rows)


def _tests_table(
    comparisons: dict[str, dict[str, st.Comparison]], *, metric_order: list[str], mde: float
) -> Table:
    header = ["arm vs control", "metric", "control", "arm", "difference", "lift %", "lift CI low %",
              "lift CI high %", "z / t", "p-value", "lists needed per arm", "lists (smaller arm)", "verdict"]  # fmt: skip
    rows = []
    for name, by_metric in comparisons.items():
        for metric in metric_order:
            c = by_metric[metric]
            lift = lambda v: None if v is None else round(v * 100, 2)  # noqa: E731
            rows.append(
                (name, METRICS[metric], _r(c.control), _r(c.arm), _r(c.diff), lift(c.lift), lift(c.lift_low),
                 lift(c.lift_high), _r(c.statistic, 3), _r(c.p_value), c.required_n, c.n,
                 st.verdict(c, arm=name))
            )  # fmt: skip
    return Table(
        "experiment_tests",
        f"Significance (two-sided, 95%; minimum detectable effect {mde * 100:g}%)",
        header,
        rows,
    )


def _guardrails_table(arms: list[ArmStats], *, catalog_size: int) -> Table:
    shown = {pk for a in arms for pks in a.sample for pk in pks}
    vectors = serving_selectors.item_vectors(item_pks=shown) if shown else {}
    rows = []
    for a in arms:
        diversity = metrics.mean_diversity(
            np.array([vectors[pk] for pk in pks if pk in vectors]) for pks in a.sample
        )
        latency = a.latency
        rows.append(
            (a.name, a.lists, len(a.items), _r(metrics.coverage(recommended=a.items, catalog_size=catalog_size)),
             _r(diversity), _r(a.impressions / a.lists if a.lists else None, 2),
             _r(latency.p50_ms, 1) if latency else NO_DATA, _r(latency.p95_ms, 1) if latency else NO_DATA,
             latency.lists if latency else 0)
        )  # fmt: skip
    header = [
        "arm",
        "lists served",
        "distinct items",
        "coverage",
        "diversity",
        "items per list",
        "p50 latency ms",
        "p95 latency ms",
        "lists timed",
    ]
    return Table("experiment_guardrails", "Guardrails", header, rows)


def experiments_for_picker() -> list:
    return serving_selectors.experiments_all()


def experiment_find(raw: str):
    """An experiment by id or name, or None."""
    raw = raw.strip()
    if raw.isdigit():
        return serving_selectors.experiment_get(pk=int(raw))
    return serving_selectors.experiment_get(name=raw)

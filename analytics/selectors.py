"""Reads for the analyst report pages. Each returns plain rows (tuples) with a header, so that a page can
render them as a table, feed a chart, and export the same rows as CSV."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from django.db.models import Count, Q, Sum

from analytics.models import DailyItemMetric, DailyMetric, EvaluationJob, EvaluationJobStatus, EvaluationRun
from analytics.rollups import ALL
from catalog.models import Item


@dataclass
class Table:
    name: str
    title: str
    header: list[str]
    rows: list[tuple]


# What the report pages call the lists served with no `surface` label (the API's surface is optional).
UNLABELLED = "unlabelled"


def surface_label(surface: str) -> str:
    """A surface as the reports name it: the blank one is "unlabelled" (and `*`, every surface, stays `*`)."""
    return surface or UNLABELLED


def daily_metrics_by_surface(*, start: date, end: date) -> Table:
    """Per day and surface (all scenarios together; surface '*' is every surface): the live metrics."""
    rows = (
        DailyMetric.objects.filter(day__gte=start, day__lte=end, scenario=ALL)
        .order_by("day", "surface")
        .values_list(
            "day",
            "surface",
            "lists_served",
            "impressions",
            "clicks",
            "add_to_carts",
            "conversions",
            "revenue",
            "coverage",
            "diversity",
            "gini",
            "novelty",
        )
    )
    out = []
    for day, surface, lists, imp, clicks, carts, conv, revenue, cov, div, gini, nov in rows:
        surface = surface_label(surface)
        ctr = clicks / imp if imp else 0.0
        conv_rate = conv / clicks if clicks else 0.0
        out.append(
            (
                day,
                surface,
                lists,
                imp,
                clicks,
                carts,
                conv,
                revenue,
                round(ctr, 6),
                round(conv_rate, 6),
                round(cov, 6),
                None if div is None else round(div, 6),
                round(gini, 6),
                None if nov is None else round(nov, 4),
            )
        )
    return Table(
        "daily",
        "Daily metrics per surface",
        [
            "day",
            "surface",
            "lists",
            "impressions",
            "clicks",
            "add_to_carts",
            "conversions",
            "revenue",
            "ctr",
            "conversion_rate",
            "coverage",
            "diversity",
            "gini",
            "novelty",
        ],
        out,
    )


def daily_metrics_by_scenario(*, start: date, end: date) -> Table:
    rows = (
        DailyMetric.objects.filter(day__gte=start, day__lte=end)
        .exclude(scenario=ALL)
        .order_by("day", "surface", "scenario")
        .values_list("day", "surface", "scenario", "impressions", "clicks", "conversions", "revenue")
    )
    out = [
        (
            day,
            surface_label(surface),
            scenario,
            imp,
            clicks,
            conv,
            revenue,
            round(clicks / imp, 6) if imp else 0.0,
        )
        for day, surface, scenario, imp, clicks, conv, revenue in rows
    ]
    return Table(
        "scenarios",
        "Daily metrics per surface and scenario",
        ["day", "surface", "scenario", "impressions", "clicks", "conversions", "revenue", "ctr"],
        out,
    )


def impressions_long_tail(*, start: date, end: date) -> Table:
    """Every active item ranked by impressions in the window (items never shown included, with 0), with
    the cumulative share of impressions: the long tail."""
    shown = dict(
        DailyItemMetric.objects.filter(day__gte=start, day__lte=end)
        .values("item_id")
        .annotate(n=Sum("impressions"))
        .values_list("item_id", "n")
    )
    active = Item.objects.filter(is_active=True).values_list("pk", "external_id")
    counts = sorted(((shown.get(pk, 0), ext) for pk, ext in active), key=lambda r: (-r[0], r[1]))
    total = sum(n for n, _ in counts) or 1
    rows, running = [], 0
    for rank, (n, ext) in enumerate(counts, start=1):
        running += n
        rows.append((rank, ext, n, round(running / total, 6)))
    return Table(
        "long_tail", "Impressions over the catalog", ["rank", "item", "impressions", "cumulative_share"], rows
    )


def top_items(*, start: date, end: date, by: str, limit: int = 20) -> Table:
    assert by in {"impressions", "conversions"}
    rows = (
        DailyItemMetric.objects.filter(day__gte=start, day__lte=end)
        .values("item__external_id", "item__title")
        .annotate(
            impressions=Sum("impressions"),
            clicks=Sum("clicks"),
            conversions=Sum("conversions"),
            revenue=Sum("revenue"),
        )
        .filter(**{f"{by}__gt": 0})
        .order_by(f"-{by}", "item__external_id")[:limit]
    )
    return Table(
        f"top_items_{by}",
        f"Top items by {by}",
        ["item", "title", "impressions", "clicks", "conversions", "revenue"],
        [
            (
                r["item__external_id"],
                r["item__title"],
                r["impressions"],
                r["clicks"],
                r["conversions"],
                r["revenue"],
            )
            for r in rows
        ],
    )


def top_categories(*, start: date, end: date, by: str, limit: int = 20) -> Table:
    """Top-level categories (the first name of the item's path) by impressions or conversions."""
    assert by in {"impressions", "conversions"}
    totals: dict[str, list] = {}
    rows = (
        DailyItemMetric.objects.filter(day__gte=start, day__lte=end)
        .values("item__category_path")
        .annotate(impressions=Sum("impressions"), clicks=Sum("clicks"), conversions=Sum("conversions"))
    )
    for r in rows:
        path = r["item__category_path"] or []
        name = path[0] if path else "(none)"
        t = totals.setdefault(name, [0, 0, 0])
        t[0] += r["impressions"] or 0
        t[1] += r["clicks"] or 0
        t[2] += r["conversions"] or 0
    key = 0 if by == "impressions" else 2
    ranked = sorted(((n, *t) for n, t in totals.items() if t[key] > 0), key=lambda r: (-r[key + 1], r[0]))
    return Table(
        f"top_categories_{by}",
        f"Top categories by {by}",
        ["category", "impressions", "clicks", "conversions"],
        ranked[:limit],
    )


def evaluation_runs(*, ids: list[int] | None = None, latest: int = 6) -> list[EvaluationRun]:
    if ids:
        return list(EvaluationRun.objects.filter(pk__in=ids).order_by("pk"))
    return list(reversed(EvaluationRun.objects.order_by("-pk")[:latest]))


def evaluation_runs_table(runs: list[EvaluationRun]) -> Table:
    """One row per run: what it ran on and how long it took."""
    rows = [
        (
            r.pk,
            r.protocol,
            r.label,
            r.created_at.strftime("%Y-%m-%d %H:%M"),
            r.summary.get("users_evaluated"),
            r.summary.get("train_events"),
            r.summary.get("active_items"),
            round(r.duration_seconds, 1),
            r.dataset_fingerprint[:12],
        )
        for r in runs
    ]
    header = [
        "run",
        "protocol",
        "label",
        "created",
        "users",
        "train_events",
        "active_items",
        "seconds",
        "dataset",
    ]
    return Table("runs", "Runs", header, rows)


def evaluation_table(runs: list[EvaluationRun]) -> Table:
    """One row per run and method, one column per metric (the union over the runs)."""
    columns = sorted({c for r in runs for v in r.metrics.values() for c in v}, key=_metric_order)
    rows = []
    for run in runs:
        for method, values in sorted(run.metrics.items()):
            rows.append(
                (
                    run.pk,
                    run.protocol,
                    run.label,
                    run.created_at.strftime("%Y-%m-%d %H:%M"),
                    method,
                    *[round(v, 6) if isinstance(v := values.get(c), float) else v for c in columns],
                )
            )
    return Table(
        "evaluations", "Evaluation runs", ["run", "protocol", "label", "created", "method", *columns], rows
    )


def _metric_order(name: str) -> tuple:
    base, _, k = name.partition("@")
    order = ["recall", "ndcg", "hit_rate", "mrr", "coverage", "diversity", "mean_popularity"]
    return (order.index(base) if base in order else len(order), int(k) if k.isdigit() else 0, name)


def attribution_counts(*, start: date, end: date) -> dict[str, int]:
    """Known and flagged (unknown recommendation id) attributions, for the overview's header."""
    from analytics.models import Attribution

    return Attribution.objects.filter(occurred_at__date__gte=start, occurred_at__date__lte=end).aggregate(
        known=Count("id", filter=Q(list_known=True)), flagged=Count("id", filter=Q(list_known=False))
    )


def evaluation_job_current(*, job_id: str = "") -> EvaluationJob | None:
    """The job the page follows: the one named (`?job=`), else the newest that is still queued or running."""
    if job_id.isdigit():
        return EvaluationJob.objects.filter(pk=int(job_id)).select_related("run").first()
    active = EvaluationJob.objects.filter(
        status__in=[EvaluationJobStatus.QUEUED, EvaluationJobStatus.RUNNING]
    )
    return active.select_related("run").first()


def evaluation_job_state(job: EvaluationJob) -> dict:
    return {
        "id": job.pk,
        "status": job.status,
        "scope": job.scope,
        "progress": job.progress,
        "message": job.message,
        "run_id": job.run_id,
        "created_at": job.created_at.isoformat(),
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
    }

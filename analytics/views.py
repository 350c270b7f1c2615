"""The analyst report pages (staff login): overview, long tail, top items and categories, evaluation
runs, A/B experiments. Every table on a page can be downloaded as CSV with `?format=csv&table=<name>`."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlencode

from django import forms
from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from analytics import ablation_report, selectors, services
from analytics import experiments as experiment_report
from analytics.csv_export import csv_response
from analytics.rollups import ALL
from analytics.selectors import Table

MAX_DAYS = 366
CHART_METRICS = [
    ("ctr", "CTR"),
    ("conversion_rate", "Conversion rate"),
    ("coverage", "Coverage"),
    ("diversity", "Diversity"),
]
# The long-tail chart plots at most this many points (every n-th rank beyond); the CSV has every item.
LONG_TAIL_POINTS = 500


class BadQuery(ValueError):
    pass


def _window(request: HttpRequest):
    raw = request.GET.get("days", "30")
    try:
        days = int(raw)
    except ValueError:
        raise BadQuery(f"days: must be a whole number of days (got {raw!r}).") from None
    if not 1 <= days <= MAX_DAYS:
        raise BadQuery(f"days: must be between 1 and {MAX_DAYS} (got {days}).")
    end = timezone.now().date()
    return days, end - timedelta(days=days - 1), end


def _csv_or_page(request: HttpRequest, tables: list[Table], template: str, context: dict) -> HttpResponse:
    if request.GET.get("format") == "csv":
        wanted = request.GET.get("table", "")
        table = next((t for t in tables if t.name == wanted), None)
        if table is None:
            names = ", ".join(t.name for t in tables)
            return HttpResponseBadRequest(
                f"table: unknown table {wanted!r}; one of {names}.", content_type="text/plain"
            )
        return csv_response(filename=f"{table.name}.csv", header=table.header, rows=table.rows)
    return render(request, template, {**context, "tables": tables})


def _bad(exc: BadQuery) -> HttpResponse:
    return HttpResponseBadRequest(str(exc), content_type="text/plain")


@staff_member_required
def overview(request: HttpRequest) -> HttpResponse:
    try:
        days, start, end = _window(request)
    except BadQuery as exc:
        return _bad(exc)
    daily = selectors.daily_metrics_by_surface(start=start, end=end)
    scenarios = selectors.daily_metrics_by_scenario(start=start, end=end)
    labels = sorted({str(r[0]) for r in daily.rows})
    col = {name: i for i, name in enumerate(daily.header)}
    charts = {}
    for metric, title in CHART_METRICS:
        series: dict[str, list] = {}
        for row in daily.rows:
            surface = (
                "all surfaces" if row[col["surface"]] == ALL else selectors.surface_label(row[col["surface"]])
            )
            series.setdefault(surface, [None] * len(labels))[labels.index(str(row[0]))] = row[col[metric]]
        charts[metric] = {"title": title, "labels": labels, "series": series}
    context = {
        "days": days,
        "start": start,
        "end": end,
        "charts": charts,
        "chart_data": {f"{key}-chart": {**chart, "type": "line"} for key, chart in charts.items()},
        "attribution": selectors.attribution_counts(start=start, end=end),
        "page": "overview",
    }
    return _csv_or_page(request, [daily, scenarios], "analytics/overview.html", context)


@staff_member_required
def long_tail(request: HttpRequest) -> HttpResponse:
    try:
        days, start, end = _window(request)
    except BadQuery as exc:
        return _bad(exc)
    table = selectors.impressions_long_tail(start=start, end=end)
    step = max(1, len(table.rows) // LONG_TAIL_POINTS)
    points = table.rows[::step]
    chart = {
        "labels": [r[0] for r in points],
        "impressions": [r[2] for r in points],
        "cumulative": [r[3] for r in points],
    }
    total = sum(r[2] for r in table.rows)
    shown = sum(1 for r in table.rows if r[2] > 0)
    # the share of the catalog that takes 80% of impressions
    head = next((r[0] for r in table.rows if r[3] >= 0.8), 0) if total else 0
    chart_data = {
        "long-tail-chart": {
            "type": "bar",
            "labels": chart["labels"],
            "series": {"impressions": chart["impressions"]},
            "y2": {"cumulative share": chart["cumulative"]},
        }
    }
    context = {
        "days": days,
        "start": start,
        "end": end,
        "chart_data": chart_data,
        "total": total,
        "shown": shown,
        "catalog": len(table.rows),
        "head80": head,
        "page": "long_tail",
        "preview": table.rows[:50],
    }
    return _csv_or_page(request, [table], "analytics/long_tail.html", context)


@staff_member_required
def top(request: HttpRequest) -> HttpResponse:
    try:
        days, start, end = _window(request)
    except BadQuery as exc:
        return _bad(exc)
    tables = [
        selectors.top_items(start=start, end=end, by="impressions"),
        selectors.top_items(start=start, end=end, by="conversions"),
        selectors.top_categories(start=start, end=end, by="impressions"),
        selectors.top_categories(start=start, end=end, by="conversions"),
    ]
    charts = [_top_chart(table) for table in tables]
    context = {
        "days": days,
        "start": start,
        "end": end,
        "page": "top",
        "charts": charts,
        "chart_data": {c["id"]: c["spec"] for c in charts if c["spec"]["labels"]},
    }
    return _csv_or_page(request, tables, "analytics/top.html", context)


# Counts drawn on the "Top items and categories" charts, beside the one a table is ranked by.
TOP_CHART_COUNTS = ["impressions", "clicks", "conversions"]


def _top_chart(table: Table) -> dict:
    """A bar chart of a top-N table: one bar group per item or category (by its id or name), one series per
    count. Impressions dwarf the rest, so a table ranked by conversions leaves them out."""
    col = {name: i for i, name in enumerate(table.header)}
    counts = [c for c in TOP_CHART_COUNTS if c in col]
    if table.name.endswith("_conversions"):
        counts = [c for c in counts if c != "impressions"]
    spec = {
        "type": "bar",
        "labels": [str(row[0]) for row in table.rows],
        "series": {c: [row[col[c]] or 0 for row in table.rows] for c in counts},
    }
    return {"id": f"{table.name}-chart", "title": table.title, "spec": spec}


@staff_member_required
def evaluations(request: HttpRequest) -> HttpResponse:
    raw = request.GET.get("runs", "")
    try:
        ids = [int(x) for x in raw.split(",") if x.strip()]
    except ValueError:
        return _bad(BadQuery(f"runs: a comma-separated list of run ids (got {raw!r})."))
    runs = selectors.evaluation_runs(ids=ids or None)
    table = selectors.evaluation_table(runs)
    metric_names = table.header[5:]
    metric = request.GET.get("metric") or (
        "recall@10" if "recall@10" in metric_names else next(iter(metric_names), "")
    )
    if metric_names and metric not in metric_names:
        return _bad(BadQuery(f"metric: unknown metric {metric!r}; one of {', '.join(metric_names)}."))
    methods = sorted({m for r in runs for m in r.metrics})
    chart = {
        "labels": methods,
        "series": {
            f"#{r.pk} {r.protocol}{' ' + r.label if r.label else ''}": [
                r.metrics.get(m, {}).get(metric) for m in methods
            ]
            for r in runs
        },
        "title": metric,
    }
    chart_data = {"evaluation-chart": {**chart, "type": "bar"}}
    tables = [selectors.evaluation_runs_table(runs), table]
    # the re-ranking ablation (`evaluate --ablation`) of the newest run that has one: the cost of each rule
    ablated = ablation_report.ablation_run(runs)
    if ablated is not None:
        chart_data.update(ablation_report.ablation_charts(ablated))
        tables.insert(0, ablation_report.ablation_report_table(ablated))
    context = {
        "runs": runs,
        "metric": metric,
        "metric_names": metric_names,
        "page": "evaluations",
        "chart_data": chart_data,
        "run_ids": ",".join(str(r.pk) for r in runs),
        "ablated": ablated,
        "job": selectors.evaluation_job_current(job_id=request.GET.get("job", "")),
        "scopes": list(services.JOB_SCOPES),
    }
    return _csv_or_page(request, tables, "analytics/evaluations.html", context)


@staff_member_required
@require_POST
def evaluation_start(request: HttpRequest) -> HttpResponse:
    """Start an evaluation run (a Celery job) from the page; the page then follows its progress."""
    scope = request.POST.get("scope", "quick")
    if scope not in services.JOB_SCOPES:
        return _bad(BadQuery(f"scope: one of {', '.join(services.JOB_SCOPES)} (got {scope[:30]!r})."))
    job = services.evaluation_job_start(scope=scope, requested_by=request.user.get_username())
    return redirect(f"{reverse('reports:evaluations')}?job={job.pk}")


@staff_member_required
@require_GET
def evaluation_job(request: HttpRequest, job_id: int) -> JsonResponse:
    """A job's state, for the page's progress bar."""
    job = selectors.evaluation_job_current(job_id=str(job_id))
    if job is None or job.pk != job_id:
        return JsonResponse({"error": "not_found", "detail": f"No evaluation job {job_id}."}, status=404)
    return JsonResponse(selectors.evaluation_job_state(job))


class ExperimentForm(forms.Form):
    """The experiment report's question: which experiment, which metric decides, and the smallest
    relative change worth detecting."""

    experiment = forms.CharField(required=False, max_length=100)
    metric = forms.ChoiceField(
        choices=list(experiment_report.METRICS.items()),
        required=False,
        initial=experiment_report.DEFAULT_METRIC,
    )
    mde = forms.FloatField(
        required=False,
        min_value=0.1,
        max_value=1000,
        initial=experiment_report.DEFAULT_MDE_PERCENT,
        label="Minimum detectable effect (%)",
    )


@staff_member_required
def experiments(request: HttpRequest) -> HttpResponse:
    form = ExperimentForm(request.GET)
    if not form.is_valid():
        reasons = "; ".join(f"{name}: {' '.join(map(str, errors))}" for name, errors in form.errors.items())
        return _bad(BadQuery(reasons))
    picker = experiment_report.experiments_for_picker()
    wanted = form.cleaned_data["experiment"]
    if wanted:
        chosen = experiment_report.experiment_find(wanted)
        if chosen is None:
            return _bad(BadQuery(f"experiment: no experiment with id or name {wanted!r}."))
    else:
        chosen = picker[0] if picker else None
    metric = form.cleaned_data["metric"] or experiment_report.DEFAULT_METRIC
    mde_percent = form.cleaned_data["mde"] or experiment_report.DEFAULT_MDE_PERCENT
    context: dict = {
        "page": "experiments",
        "picker": picker,
        "chosen": chosen,
        "metric": metric,
        "metrics": experiment_report.METRICS,
        "metric_title": experiment_report.METRICS[metric],
        "mde": f"{mde_percent:g}",
    }
    if chosen is None:
        return _csv_or_page(request, [], "analytics/experiments.html", context)
    report = experiment_report.experiment_report(experiment=chosen, metric=metric, mde=mde_percent / 100)
    labels = [a.name for a in report.arms]
    context.update(
        report=report,
        query=urlencode({"experiment": chosen.pk, "metric": metric, "mde": f"{mde_percent:g}"}),
        chart_data={
            "experiment-rates-chart": {
                "type": "bar",
                "labels": labels,
                "series": {
                    "CTR": [a.ctr.value for a in report.arms],
                    "conversion rate": [a.conversion.value for a in report.arms],
                },
            },
            "experiment-revenue-chart": {
                "type": "bar",
                "labels": labels,
                "series": {"revenue per list": [a.revenue_per_list.value for a in report.arms]},
            },
        },
    )
    return _csv_or_page(request, report.tables, "analytics/experiments.html", context)

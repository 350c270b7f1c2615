"""The re-ranking ablation on the evaluation report: the newest run that has one (`evaluate --ablation`
stores the table from `training.ablation` in the run's summary), as a table (page and CSV) and as charts."""

from __future__ import annotations

from typing import Any

from analytics.selectors import Table
from training.ablation import ALL, COLUMNS, NONE

# The served default keeps at least this share of the ranker's raw NDCG (issue 13): the charts' reference
KEEP_SHARE = 0.97


def ablation_run(runs: list) -> Any:
    """The newest of these EvaluationRuns that has an ablation table, or None."""
    return next((r for r in sorted(runs, key=lambda r: r.pk, reverse=True) if "ablation" in r.summary), None)


def ablation_report_table(run) -> Table:
    """The run's ablation as a report Table (page and CSV)."""
    table = run.summary["ablation"]
    k = table["k"]
    header = ["variant", *(f"{prefix}@{k}" for prefix, _ in COLUMNS), f"% of raw ndcg@{k}"]
    rows = [
        (
            row["label"],
            *(None if row[f"{p}@{k}"] is None else round(row[f"{p}@{k}"], 4) for p, _ in COLUMNS),
            None if row["share_of_raw_ndcg"] is None else round(100 * row["share_of_raw_ndcg"], 1),
        )
        for row in table["rows"]
    ]
    return Table("ablation", f"Cost of each business rule (run #{run.pk}, {run.protocol})", header, rows)


def ablation_charts(run) -> dict[str, dict]:
    """Scatter charts for reports.js: accuracy (NDCG@K) against diversity@K and against coverage@K, one
    point per variant."""
    table = run.summary["ablation"]
    k = table["k"]
    raw = next((r[f"ndcg@{k}"] for r in table["rows"] if r["method"] == NONE), None)
    charts: dict[str, dict[str, Any]] = {}
    for axis in ("diversity", "coverage"):
        points = [
            {
                "label": row["label"],
                "x": row[f"{axis}@{k}"],
                "y": row[f"ndcg@{k}"],
                "main": row["method"] in (ALL, NONE),
            }
            for row in table["rows"]
            if row[f"{axis}@{k}"] is not None and row[f"ndcg@{k}"] is not None
        ]
        charts[f"ablation-{axis}-chart"] = {
            "type": "scatter",
            "points": points,
            "x_title": f"{axis}@{k}",
            "y_title": f"NDCG@{k}",
        }
        if raw:
            charts[f"ablation-{axis}-chart"]["reference"] = {
                "label": f"{KEEP_SHARE:.0%} of raw NDCG@{k}",
                "y": KEEP_SHARE * raw,
            }
    return charts

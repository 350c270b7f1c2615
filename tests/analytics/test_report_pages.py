"""The analyst report pages: staff only, charts fed with the rollups, CSV export of every table."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from django.utils import timezone

from analytics.models import EvaluationRun
from analytics.rollups import daily_metrics_rollup
from tests.factories import EventFactory, ItemFactory, served_list

pytestmark = pytest.mark.django_db

PAGES = ["/reports/", "/reports/long-tail", "/reports/top", "/reports/evaluations", "/reports/experiments"]


@pytest.fixture
def staff_client(client, django_user_model):
    user = django_user_model.objects.create_user("analyst", password="pw-analyst-1", is_staff=True)
    client.force_login(user)
    return client


@pytest.fixture
def traffic():
    # All of it on one UTC day, also when the test runs just after midnight (the rollup is per day).
    now = max(timezone.now(), timezone.now().replace(hour=1, minute=0, second=0, microsecond=0))
    a = ItemFactory(embedding=None, published_at=None, category_path=["Home", "Lamps"])
    b = ItemFactory(embedding=None, published_at=None, category_path=["Garden"])
    ItemFactory(category_path=[], embedding=None, published_at=None)  # never shown
    home = served_list([a, b], surface="home", scenario="user", created_at=now - timedelta(minutes=30))
    served_list([b], surface="pdp", scenario="similar", created_at=now - timedelta(minutes=20))
    EventFactory(
        session_id="s1",
        item=b,
        event_type="click",
        recommendation_id=home.recommendation_id,
        timestamp=now - timedelta(minutes=29),
    )
    EventFactory(
        session_id="s1",
        item=b,
        event_type="purchase",
        timestamp=now - timedelta(minutes=10),
        value=4,
        quantity=3,
    )
    daily_metrics_rollup(day=now.date())
    return a, b


@pytest.mark.parametrize("url", PAGES)
def test_report_pages_redirect_anonymous_visitors_to_login(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


@pytest.mark.parametrize("url", PAGES)
def test_report_pages_refuse_logged_in_non_staff(client, django_user_model, url):
    client.force_login(django_user_model.objects.create_user("shopper", password="pw-shopper-1"))
    assert client.get(url).status_code == 302


def _charts(response) -> dict:
    html = response.content.decode()
    start = html.index('<script id="report-charts" type="application/json">') + len(
        '<script id="report-charts" type="application/json">'
    )
    return json.loads(html[start : html.index("</script>", start)])


def test_overview_charts_ctr_conversion_coverage_and_diversity_per_surface(staff_client, traffic):
    response = staff_client.get("/reports/?days=7")
    assert response.status_code == 200
    charts = _charts(response)
    assert set(charts) == {"ctr-chart", "conversion_rate-chart", "coverage-chart", "diversity-chart"}
    ctr = charts["ctr-chart"]["series"]
    assert ctr["home"] == [pytest.approx(0.5)]  # 1 click / 2 items shown
    assert ctr["pdp"] == [0.0]
    assert ctr["all surfaces"] == [pytest.approx(1 / 3)]
    assert charts["conversion_rate-chart"]["series"]["home"] == [1.0]
    assert charts["coverage-chart"]["series"]["all surfaces"] == [pytest.approx(2 / 3)]


def test_overview_tables_export_as_csv(staff_client, traffic):
    response = staff_client.get("/reports/?days=7&format=csv&table=daily")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    home = next(r for r in rows if r["surface"] == "home")
    assert (home["impressions"], home["clicks"], home["conversions"]) == ("2", "1", "1")
    assert float(home["revenue"]) == 12.0
    scenarios = staff_client.get("/reports/?format=csv&table=scenarios")
    assert "similar" in scenarios.content.decode()


def test_long_tail_ranks_every_active_item_including_never_shown(staff_client, traffic):
    a, b = traffic
    page = staff_client.get("/reports/long-tail")
    assert page.status_code == 200
    assert _charts(page)["long-tail-chart"]["series"]["impressions"] == [2, 1, 0]
    rows = list(
        csv.reader(
            io.StringIO(staff_client.get("/reports/long-tail?format=csv&table=long_tail").content.decode())
        )
    )
    assert rows[0] == ["rank", "item", "impressions", "cumulative_share"]
    assert rows[1][1:3] == [b.external_id, "2"]
    assert len(rows) == 4
    assert rows[-1][3] == "1.0"


def test_top_items_and_categories_by_impressions_and_conversions(staff_client, traffic):
    a, b = traffic
    page = staff_client.get("/reports/top")
    assert page.status_code == 200
    for table in (
        "top_items_impressions",
        "top_items_conversions",
        "top_categories_impressions",
        "top_categories_conversions",
    ):
        assert staff_client.get(f"/reports/top?format=csv&table={table}").status_code == 200
    conv = list(
        csv.reader(
            io.StringIO(
                staff_client.get("/reports/top?format=csv&table=top_items_conversions").content.decode()
            )
        )
    )
    assert [r[0] for r in conv[1:]] == [b.external_id]
    cats = list(
        csv.reader(
            io.StringIO(
                staff_client.get("/reports/top?format=csv&table=top_categories_impressions").content.decode()
            )
        )
    )
    assert cats[1] == ["Garden", "2", "1", "1"]
    assert cats[2] == ["Home", "1", "0", "0"]


def test_top_page_charts_each_table(staff_client, traffic):
    a, b = traffic
    charts = _charts(staff_client.get("/reports/top"))
    assert set(charts) == {
        "top_items_impressions-chart",
        "top_items_conversions-chart",
        "top_categories_impressions-chart",
        "top_categories_conversions-chart",
    }
    by_impressions = charts["top_items_impressions-chart"]
    assert by_impressions["type"] == "bar"
    assert by_impressions["labels"] == [b.external_id, a.external_id]
    assert by_impressions["series"] == {"impressions": [2, 1], "clicks": [1, 0], "conversions": [1, 0]}
    assert charts["top_items_conversions-chart"]["series"] == {"clicks": [1], "conversions": [1]}
    assert charts["top_categories_impressions-chart"]["labels"] == ["Garden", "Home"]


def test_the_blank_surface_is_named_unlabelled(staff_client, traffic):
    now = timezone.now()
    served_list([traffic[0]], surface="", scenario="trending", created_at=now - timedelta(minutes=5))
    daily_metrics_rollup(day=now.date())
    page = staff_client.get("/reports/?days=7")
    assert "unlabelled" in _charts(page)["ctr-chart"]["series"]
    daily = list(
        csv.DictReader(io.StringIO(staff_client.get("/reports/?format=csv&table=daily").content.decode()))
    )
    assert {r["surface"] for r in daily} == {"*", "home", "pdp", "unlabelled"}
    scenarios = staff_client.get("/reports/?format=csv&table=scenarios").content.decode()
    assert "unlabelled,trending" in scenarios


def test_evaluation_runs_side_by_side_with_a_chart_and_csv(staff_client):
    r1 = EvaluationRun.objects.create(
        protocol="leave-one-out",
        dataset_fingerprint="f" * 64,
        metrics={"popularity": {"recall@10": 0.1}, "cooccurrence": {"recall@10": 0.3}},
    )
    r2 = EvaluationRun.objects.create(
        protocol="temporal",
        dataset_fingerprint="f" * 64,
        metrics={"popularity": {"recall@10": 0.05}, "cooccurrence": {"recall@10": 0.2}},
    )
    page = staff_client.get(f"/reports/evaluations?runs={r1.pk},{r2.pk}&metric=recall@10")
    assert page.status_code == 200
    chart = _charts(page)["evaluation-chart"]
    assert chart["labels"] == ["cooccurrence", "popularity"]
    assert chart["series"][f"#{r1.pk} leave-one-out"] == [0.3, 0.1]
    rows = list(
        csv.reader(
            io.StringIO(
                staff_client.get(
                    f"/reports/evaluations?runs={r1.pk},{r2.pk}&format=csv&table=evaluations"
                ).content.decode()
            )
        )
    )
    assert rows[0][:5] == ["run", "protocol", "label", "created", "method"]
    assert len(rows) == 5
    runs_csv = staff_client.get(
        f"/reports/evaluations?runs={r1.pk},{r2.pk}&format=csv&table=runs"
    ).content.decode()
    assert [r[1] for r in csv.reader(io.StringIO(runs_csv))] == ["protocol", "leave-one-out", "temporal"]


def test_bad_report_parameters_get_a_400_naming_the_field(staff_client):
    for url, field in [
        ("/reports/?days=abc", "days"),
        ("/reports/top?days=0", "days"),
        ("/reports/evaluations?runs=x", "runs"),
        ("/reports/?format=csv&table=nope", "table"),
    ]:
        response = staff_client.get(url)
        assert response.status_code == 400, url
        assert response.content.decode().startswith(f"{field}:")


def test_pages_render_with_no_data(staff_client):
    for url in PAGES:
        assert staff_client.get(url).status_code == 200

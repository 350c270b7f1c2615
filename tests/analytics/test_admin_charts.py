"""Admin-index charts (django-admin-charts), fed from the feedback loop's tables, with vendored JS."""

from __future__ import annotations

import importlib
import json
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.factories import EventFactory, ItemFactory, served_list

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def charts(db):
    """The charts the data migration creates (a transactional test elsewhere may have flushed them)."""
    from django.apps import apps

    migration = importlib.import_module("analytics.migrations.0002_admin_index_charts")
    migration.charts_create(apps, None)
    by_time = importlib.import_module("analytics.migrations.0005_events_chart_by_event_time_reports_day_one")
    by_time.chart_by_timestamp(apps, None)


@pytest.fixture
def staff_client(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("root", password="pw-root-1"))
    return client


def test_admin_index_shows_the_feedback_loop_charts_with_vendored_scripts(staff_client):
    html = staff_client.get("/admin/").content.decode()
    for title in (
        "Recommendation lists served",
        "Clicks attributed to recommendations",
        "Events (by when they happened)",
    ):
        assert title in html
    assert "/static/vendor/d3/d3.min.js" in html
    assert "/static/vendor/nvd3/nv.d3.min.js" in html
    assert "unpkg.com" not in html


def test_admin_chart_data_counts_served_lists_per_day(staff_client):
    item = ItemFactory(category_path=[], embedding=None, published_at=None)
    served_list([item], created_at=timezone.now())
    served_list([item], created_at=timezone.now())
    EventFactory(session_id="s1", item=item, timestamp=timezone.now())
    since, until = (timezone.now() - timedelta(days=2)).date(), (timezone.now() + timedelta(days=1)).date()
    response = staff_client.get(
        f"/admin_tools_stats/chart_data/recsys_served_lists/?time_scale=days&time_since={since}&time_until={until}"
    )
    assert response.status_code == 200
    html = response.content.decode()
    start = html.index("data_chart_container_recsys_served_lists=") + len(
        "data_chart_container_recsys_served_lists="
    )
    series = json.loads(html[start : html.index(";", start)])
    assert sorted(point["y"] for point in series[0]["values"]) == [0, 0, 0, 2]


def _series(staff_client, key, since, until):
    response = staff_client.get(
        f"/admin_tools_stats/chart_data/{key}/?time_scale=days&time_since={since}&time_until={until}"
    )
    assert response.status_code == 200
    html = response.content.decode()
    marker = f"data_chart_container_{key}="
    start = html.index(marker) + len(marker)
    return json.loads(html[start : html.index(";", start)])[0]["values"]


def test_events_chart_counts_each_event_on_the_day_it_happened(staff_client):
    item = ItemFactory(category_path=[], embedding=None, published_at=None)
    today = timezone.now()
    for days_ago in (10, 10, 10, 3):  # imported history: all received today
        EventFactory(session_id="s1", item=item, timestamp=today - timedelta(days=days_ago))
    since, until = (today - timedelta(days=14)).date(), (today + timedelta(days=1)).date()
    counts = [point["y"] for point in _series(staff_client, "recsys_events", since, until)]
    assert sum(counts) == 4 and sorted(c for c in counts if c) == [1, 3]
    assert counts[-1] == 0 and counts[-2] == 0  # nothing on today, although they were all received today


def test_admin_chart_data_is_not_given_to_anonymous_visitors(client):
    served_list([ItemFactory(category_path=[], embedding=None, published_at=None)], created_at=timezone.now())
    response = client.get(
        "/admin_tools_stats/chart_data/recsys_served_lists/?time_scale=days&time_since=2026-01-01"
    )
    # every chart view is staff-only (recsys_project/urls.py): a visitor is sent to the admin login
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")


def test_analytics_models_are_browsable_in_admin(staff_client):
    for url in (
        "/admin/analytics/evaluationrun/",
        "/admin/analytics/dailymetric/",
        "/admin/analytics/attribution/",
    ):
        assert staff_client.get(url).status_code == 200

"""The "Top items and categories" report in a real headless Chromium: each table has its chart, drawn."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from analytics.rollups import daily_metrics_rollup
from tests.browser import OUTPUT, needs_chromium
from tests.factories import EventFactory, ItemFactory, served_list

pytestmark = needs_chromium


def test_top_items_and_categories_page_draws_a_chart_per_table(
    live_server, transactional_db, browser, django_user_model
):
    now = timezone.now()
    lamp = ItemFactory(embedding=None, published_at=None, external_id="lamp", category_path=["Home", "Lamps"])
    rake = ItemFactory(embedding=None, published_at=None, external_id="rake", category_path=["Garden"])
    home = served_list([lamp, rake], surface="home", scenario="user", created_at=now - timedelta(minutes=30))
    served_list([rake], surface="", scenario="trending", created_at=now - timedelta(minutes=20))
    EventFactory(
        session_id="s1",
        item=rake,
        event_type="click",
        recommendation_id=home.recommendation_id,
        timestamp=now,
    )
    EventFactory(session_id="s1", item=rake, event_type="purchase", timestamp=now, value=4, quantity=1)
    daily_metrics_rollup(day=now.date())
    django_user_model.objects.create_user("analyst", password="pw-analyst-1", is_staff=True)

    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.goto(live_server.url + "/admin/login/?next=/reports/top")
    page.fill("#id_username", "analyst")
    page.fill("#id_password", "pw-analyst-1")
    page.click("input[type=submit]")
    page.wait_for_url("**/reports/top", timeout=15000)
    for chart in ("top_items_impressions", "top_items_conversions", "top_categories_impressions"):
        page.wait_for_selector(f'#{chart}-chart[data-rendered="true"]', timeout=15000)
        box = page.locator(f"#{chart}-chart").bounding_box()
        assert box and box["width"] > 100 and box["height"] > 100
    labels = page.evaluate("() => Chart.getChart('top_items_impressions-chart').data.labels")
    assert labels == ["rake", "lamp"]
    page.screenshot(path=str(OUTPUT / "reports-top.png"), full_page=True)
    page.goto(live_server.url + "/reports/")
    page.wait_for_selector('#ctr-chart[data-rendered="true"]', timeout=15000)
    names = page.evaluate("() => Chart.getChart('ctr-chart').data.datasets.map(d => d.label)")
    assert "unlabelled" in names
    page.close()

"""The "Top items and categories" report in a real headless Chromium: each table has its chart, drawn."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from analytics.rollups import daily_metrics_rollup
from tests.factories import EventFactory, ItemFactory, served_list

CHROMIUM = "/usr/bin/chromium"
OUTPUT = Path(__file__).resolve().parents[2] / "test-output"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is absent: apt-get install -y chromium"
    ),
]


@pytest.fixture
def browser(monkeypatch):
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


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

"""The storefront and the report page in a real headless Chromium (Debian's, driven by Playwright):
recommendations show, a click is stored with its recommendation_id, and the CTR chart renders it."""

from __future__ import annotations

from django.utils import timezone

from analytics.rollups import daily_metrics_rollup
from interactions.models import Event
from tests.browser import OUTPUT, needs_chromium, wait_for
from tests.factories import ItemFactory, leading

pytestmark = needs_chromium


def test_home_recommendations_click_is_stored_and_ctr_chart_renders(
    live_server, transactional_db, browser, django_user_model
):
    OUTPUT.mkdir(exist_ok=True)
    for n in range(12):
        # a shared component plus one axis each: related items that are not near-duplicates
        ItemFactory(
            category_path=[],
            published_at=None,
            title=f"Ceramic mug no. {n}",
            embedding=leading(0.5, *([0.0] * n), 1.0),
            price=8 + n,
        )
    django_user_model.objects.create_user("analyst", password="pw-analyst-1", is_staff=True)

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(live_server.url + "/")
    cards = page.locator('[data-recsys="user"] a.card')
    cards.first.wait_for(timeout=15000)
    assert cards.count() > 0
    page.locator('[data-recsys="trending"] a.card').first.wait_for(timeout=15000)
    page.screenshot(path=str(OUTPUT / "storefront-home.png"), full_page=True)

    recommendation_id = page.locator('[data-recsys="user"]').get_attribute("data-recommendation-id")
    clicked_item = cards.first.get_attribute("data-item-id")
    cards.first.click()
    page.wait_for_url("**/items/**", timeout=15000)
    page.locator('[data-recsys="similar"] a.card').first.wait_for(timeout=15000)
    page.screenshot(path=str(OUTPUT / "storefront-item.png"), full_page=True)

    click = wait_for(lambda: Event.objects.filter(event_type="click").first())
    assert click is not None, "the click was not stored"
    assert str(click.recommendation_id) == recommendation_id
    assert (click.item_external_id, click.surface, click.position) == (clicked_item, "home", 1)
    assert wait_for(lambda: Event.objects.filter(event_type="view", item_external_id=clicked_item).exists())

    daily_metrics_rollup(day=timezone.now().date())

    page.goto(live_server.url + "/admin/login/?next=/reports/")
    page.fill("#id_username", "analyst")
    page.fill("#id_password", "pw-analyst-1")
    page.click("input[type=submit]")
    page.wait_for_url("**/reports/", timeout=15000)
    page.wait_for_selector('#ctr-chart[data-rendered="true"]', timeout=15000)
    ctr_values = page.evaluate(
        "() => Chart.getChart('ctr-chart').data.datasets.flatMap(d => d.data).filter(v => v !== null)"
    )
    assert any(v > 0 for v in ctr_values), ctr_values
    box = page.locator("#ctr-chart").bounding_box()
    assert box and box["width"] > 100 and box["height"] > 100
    page.screenshot(path=str(OUTPUT / "reports-overview.png"), full_page=True)
    page.close()

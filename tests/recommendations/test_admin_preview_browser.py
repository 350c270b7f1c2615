"""The promotion preview in a real headless Chromium (Debian's, driven by Playwright): a merchandiser logs
in, schedules a promotion for next week, previews the list as of then and sees it side by side."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from django.utils import timezone

from catalog.models import Promotion
from tests.recommendations.factories import ItemFactory, UserProfileFactory, blend, topic

CHROMIUM = "/usr/bin/chromium"
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

    monkeypatch.setenv("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")  # never download a browser
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API keeps a loop here
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def test_merchandiser_previews_a_future_promotion_side_by_side(
    live_server, transactional_db, browser, django_user_model
):
    UserProfileFactory(external_id="u1", embedding=topic(1))
    for i in range(6):
        ItemFactory(external_id=f"shoe-{i}", title=f"Shoe {i}", embedding=topic(1, jitter=0.3, seed=i))
    ItemFactory(external_id="sock", title="Sock", embedding=blend((1, 0.6), (2, 1.0)), brand="Sockit")
    start = timezone.now() + timedelta(days=7)
    Promotion.objects.create(
        name="sock week", target_type="brand", brand="Sockit", boost=3.0, starts_at=start
    )
    django_user_model.objects.create_superuser("merch", "m@example.com", "pw-merch-1")

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(live_server.url + "/admin/login/?next=/admin/catalog/promotion/")
    page.fill("#id_username", "merch")
    page.fill("#id_password", "pw-merch-1")
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/catalog/promotion/", timeout=15000)
    page.click("text=Preview")
    page.wait_for_url("**/preview/**", timeout=15000)
    page.select_option("#id_scenario", "user")
    page.fill("#id_user_id", "u1")
    page.fill("#id_limit", "5")
    page.fill("#id_as_of", (start + timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S"))
    page.click("#preview-form input[type=submit]")
    page.wait_for_selector("section[data-column='2']", timeout=15000)

    with_promotions = page.locator("section[data-column='1'] tbody tr")
    without = page.locator("section[data-column='2'] tbody tr")
    assert with_promotions.count() == 5 and without.count() == 5
    assert "sock" in with_promotions.first.inner_text()
    assert "promoted" in (with_promotions.first.get_attribute("class") or "")
    assert "sock" not in page.locator("section[data-column='2']").inner_text()
    left = page.locator("section[data-column='1']").bounding_box()
    right = page.locator("section[data-column='2']").bounding_box()
    assert left and right and right["x"] > left["x"] + left["width"] - 1  # side by side, not stacked
    page.close()

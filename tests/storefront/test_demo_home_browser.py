"""The demo right after start, in a real Chromium: the demo shop loaded and warmed up as `manage.py demo`
does it (`demo_warmup`), then its home page, an item page, the search box, and the reports. Screenshots in
test-output/ (demo-*.png)."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from analytics.models import EvaluationRun
from demo.shop import DemoShop, demo_shop_load
from recommendations.models import ServedList
from tests.browser import OUTPUT, needs_chromium, wait_for

pytestmark = needs_chromium


@pytest.fixture
def demo(transactional_db, django_user_model):
    shop = DemoShop(items=200, users=60, seed=42)
    demo_shop_load(shop=shop)
    call_command("demo_warmup", items=200, users=60, seed=42, days=3, stdout=open("/dev/null", "w"))  # noqa: SIM115
    django_user_model.objects.create_user("analyst", password="pw-analyst-1", is_staff=True)
    return shop


def test_demo_home_is_alive_right_after_start(live_server, demo, browser):
    assert EvaluationRun.objects.filter(label="demo").exists()
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.goto(live_server.url + "/")
    for_you = page.locator('[data-recsys="user"] a.card')
    trending = page.locator('[data-recsys="trending"] a.card')
    for_you.first.wait_for(timeout=20000)
    trending.first.wait_for(timeout=20000)
    page.wait_for_function(
        "() => [...document.querySelectorAll('a.card img')].every(i => i.complete && i.naturalWidth > 0)",
        timeout=20000,
    )
    page.screenshot(path=str(OUTPUT / "demo-home.png"), full_page=True)

    # trending is computed (not "new arrival"), and it does not repeat "Recommended for you"
    assert set(trending.locator(".reason").all_inner_texts()) == {"Trending now"}
    shown = set(for_you.evaluate_all("cards => cards.map(c => c.dataset.itemId)"))
    assert shown.isdisjoint(trending.evaluate_all("cards => cards.map(c => c.dataset.itemId)"))
    # generated pictures, no letter placeholders
    sources = page.locator("a.card img").evaluate_all("imgs => imgs.map(i => i.getAttribute('src'))")
    assert sources and all(s.startswith("/storefront/image.svg?c=") for s in sources)
    assert page.locator(".ph").count() == 0

    # an item page: "Similar to <title>", bought together, and the visitor's own reason back home
    title = for_you.first.locator(".title").inner_text()
    for_you.first.click()
    page.wait_for_url("**/items/**", timeout=15000)
    page.get_by_role("heading", name=f"Similar to {title}").wait_for(timeout=15000)
    page.locator('[data-recsys="bought_together"] a.card').first.wait_for(timeout=15000)
    page.locator('[data-recsys="similar"] a.card').first.wait_for(timeout=15000)
    page.screenshot(path=str(OUTPUT / "demo-item.png"), full_page=True)
    page.goto(live_server.url + "/")
    reasons = page.locator('[data-recsys="user"] .reason')
    reasons.first.wait_for(timeout=20000)
    assert f"Because you viewed {title}" in reasons.all_inner_texts()

    # the search box, narrowed to a category
    page.fill('input[name="q"]', "running shoes")
    page.select_option('select[name="category"]', "Sports & Outdoors")
    page.click('form.search button[type="submit"]')
    page.wait_for_url("**/catalog?**", timeout=15000)
    results = page.locator("[data-recsys-served] a.card")
    results.first.wait_for(timeout=15000)
    page.screenshot(path=str(OUTPUT / "demo-search.png"), full_page=True)
    served = ServedList.objects.filter(surface="search").latest("created_at")
    assert served.item_ids and all(demo.item_leaf(i)[0] == "Sports & Outdoors" for i in served.item_ids)

    # the reports have days of history at once
    page.goto(live_server.url + "/admin/login/?next=/reports/")
    page.fill("#id_username", "analyst")
    page.fill("#id_password", "pw-analyst-1")
    page.click("input[type=submit]")
    page.wait_for_url("**/reports/", timeout=15000)
    page.wait_for_selector('#ctr-chart[data-rendered="true"]', timeout=15000)
    ctr = page.evaluate(
        "() => Chart.getChart('ctr-chart').data.datasets.flatMap(d => d.data).filter(v => v !== null && v > 0)"
    )
    assert len(ctr) >= 2, ctr  # clicks on more than one day
    page.screenshot(path=str(OUTPUT / "demo-reports.png"), full_page=True)
    page.goto(live_server.url + "/reports/evaluations")
    page.wait_for_selector('#evaluation-chart[data-rendered="true"]', timeout=15000)
    page.screenshot(path=str(OUTPUT / "demo-evaluations.png"), full_page=True)
    assert wait_for(
        lambda: ServedList.objects.exclude(seen_positions=[]).filter(session_id__startswith="demo-sim-")
    )
    page.close()

"""static/recsys.js, the ES-module client, in a real Chromium: impressions of what was really on screen,
batching, and a retry that stores an event once."""

from __future__ import annotations

import pytest

from interactions.models import Event
from recommendations.models import ServedList
from tests.browser import OUTPUT, needs_chromium, wait_for
from tests.factories import ItemFactory, leading

pytestmark = needs_chromium


@pytest.fixture
def items(transactional_db):
    return [
        ItemFactory(
            published_at=None,
            title=f"Ceramic mug no. {n}",
            embedding=leading(0.5, *([0.0] * n), 1.0),
            price=8 + n,
            category_path=["Home", "Kitchen"],
        )
        for n in range(12)
    ]


def test_impressions_report_only_the_cards_that_were_on_screen(live_server, items, browser):
    # narrow and short: the first row of "Recommended for you" is on screen, the trending list is not
    page = browser.new_page(viewport={"width": 420, "height": 520})
    page.goto(live_server.url + "/")
    page.locator('[data-recsys="trending"] a.card').first.wait_for(timeout=15000)
    page.wait_for_timeout(600)  # longer than IMPRESSION_MS
    page.evaluate("() => window.recsys.flush()")
    home = wait_for(lambda: ServedList.objects.filter(surface="home").exclude(seen_positions=[]).first())
    assert home is not None, "no impression was recorded"
    assert 1 in home.seen_positions and len(home.seen_positions) < len(home.item_pks)
    trending = ServedList.objects.get(surface="trending")
    assert trending.seen_positions == []
    page.screenshot(path=str(OUTPUT / "recsys-client-impressions.png"))

    page.locator('[data-recsys="trending"]').scroll_into_view_if_needed()
    page.mouse.wheel(0, 5000)
    page.wait_for_timeout(600)
    page.evaluate("() => window.recsys.flush()")
    assert wait_for(lambda: ServedList.objects.get(surface="trending").seen_positions)
    page.close()


def test_events_are_batched_and_a_failed_batch_is_retried_and_stored_once(live_server, items, browser):
    page = browser.new_page()
    posts = []
    failures = {"left": 1}

    def flaky(route):
        posts.append(route.request.post_data_json)
        if failures["left"]:
            failures["left"] -= 1
            route.fulfill(status=503, body="{}")
        else:
            route.continue_()

    page.goto(live_server.url + "/")
    page.locator('[data-recsys="user"] a.card').first.wait_for(timeout=15000)
    page.route("**/storefront/events", flaky)
    stats = page.evaluate(
        """async () => {
            const ids = [...document.querySelectorAll('[data-recsys="user"] a.card')].map(c => c.dataset.itemId);
            for (let n = 0; n < 25; n++) window.recsys.view({ itemId: ids[n % ids.length] });
            await window.recsys.flush();
            return window.recsys.stats;
        }"""
    )
    # 25 events: a batch of 20 was sent as soon as it was full (and failed once), then the last 5
    assert sorted(len(p["events"]) for p in posts) == [5, 20, 20]
    assert stats["retried"] == 1 and stats["dropped"] == 0
    assert wait_for(lambda: Event.objects.filter(event_type="view").count() == 25)
    assert len({p["events"][0]["event_id"] for p in posts if len(p["events"]) == 20}) == 1  # same ids again
    page.close()


def test_a_click_carries_its_list_and_an_add_to_cart_shows_cart_suggestions(live_server, items, browser):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(live_server.url + "/")
    card = page.locator('[data-recsys="trending"] a.card').nth(1)
    card.wait_for(timeout=15000)
    rec = page.locator('[data-recsys="trending"]').get_attribute("data-recommendation-id")
    clicked = card.get_attribute("data-item-id")
    card.click()
    page.wait_for_url("**/items/**", timeout=15000)
    page.click("[data-recsys-cart]")
    page.locator('[data-recsys="cart"] a.card').first.wait_for(timeout=15000)
    page.screenshot(path=str(OUTPUT / "storefront-item-cart.png"), full_page=True)
    cart = wait_for(lambda: Event.objects.filter(event_type="add_to_cart").first())
    assert cart is not None and str(cart.recommendation_id) == rec
    assert (cart.item_external_id, cart.surface, cart.position) == (clicked, "trending", 2)
    page.close()

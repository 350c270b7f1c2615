"""The promotion preview in a real headless Chromium (Debian's, driven by Playwright): a merchandiser logs
in, schedules a promotion for next week, previews the list as of then and sees it side by side."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from catalog.models import Promotion
from tests.browser import OUTPUT, needs_chromium
from tests.factories import ItemFactory, UserProfileFactory, blend, topic

pytestmark = needs_chromium


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


def _login(page, live_server, next_url):
    page.goto(f"{live_server.url}/admin/login/?next={next_url}")
    page.fill("#id_username", "merch")
    page.fill("#id_password", "pw-merch-1")
    page.click("input[type=submit]")
    page.wait_for_url(f"**{next_url}", timeout=15000)


def test_merchandiser_picks_an_item_by_its_external_id_and_is_warned_it_is_out_of_stock(
    live_server, transactional_db, browser, django_user_model
):
    ItemFactory(external_id="demo-002637", title="Carbon steel wok", in_stock=False)
    ItemFactory(external_id="demo-002638", title="Bamboo steamer")
    django_user_model.objects.create_superuser("merch", "m@example.com", "pw-merch-1")
    failed: list[str] = []
    page = browser.new_page(viewport={"width": 1280, "height": 1100})
    page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    page.on(
        "console", lambda m: failed.append(m.text) if m.type == "error" and "resource" not in m.text else None
    )
    _login(page, live_server, "/admin/catalog/promotion/add/")

    # "Starts at" is prefilled with now
    assert page.input_value("#id_starts_at_0") == timezone.now().strftime("%Y-%m-%d")
    page.fill("#id_name", "Wok week")
    page.select_option("#id_target_type", "item")
    page.click(".field-item .select2-selection")
    page.fill(".select2-search__field", "demo-002637")
    option = page.locator(".select2-results__option", has_text="demo-002637: Carbon steel wok")
    option.wait_for(timeout=15000)
    page.screenshot(path=str(OUTPUT / "promotion_form_autocomplete.png"), full_page=True)
    option.click()
    page.fill("#id_pinned_slot", "1")
    page.check("input[name=surface_scope][value=all]")
    page.click("input[name=_save]")
    page.wait_for_url("**/admin/catalog/promotion/", timeout=15000)
    warning = page.locator(".messagelist .warning").inner_text()
    assert "demo-002637" in warning and "out of stock" in warning
    assert "item demo-002637" in page.locator("#result_list").inner_text()
    page.screenshot(path=str(OUTPUT / "promotion_saved_with_warning.png"), full_page=True)
    promotion = Promotion.objects.get()
    assert promotion.item.external_id == "demo-002637" and promotion.surface_scope == "all"
    assert not failed, failed  # select2 and its files load under the Content-Security-Policy
    page.close()


def test_preview_says_why_a_promotion_did_not_apply(
    live_server, transactional_db, browser, django_user_model
):
    from tests.factories import EventFactory

    UserProfileFactory(external_id="u1", embedding=topic(1))
    shoes = [
        ItemFactory(external_id=f"shoe-{i}", title=f"Shoe {i}", embedding=topic(1, jitter=0.3, seed=i))
        for i in range(6)
    ]
    wok = ItemFactory(external_id="demo-002637", title="Carbon steel wok", in_stock=False, embedding=topic(5))
    kettle = ItemFactory(external_id="kettle", title="Kettle", embedding=topic(6))
    EventFactory(user_id="u1", item=shoes[0])
    start = timezone.now() - timedelta(hours=1)
    Promotion.objects.create(name="Wok week", target_type="item", item=wok, pinned_slot=1, starts_at=start)
    Promotion.objects.create(
        name="Kettle pin", target_type="item", item=kettle, pinned_slot=2, starts_at=start
    )
    Promotion.objects.create(
        name="PDP kettles",
        target_type="item",
        item=kettle,
        starts_at=start,
        surface_scope="named",
        surfaces=["pdp"],
    )
    django_user_model.objects.create_superuser("merch", "m@example.com", "pw-merch-1")

    page = browser.new_page(viewport={"width": 1280, "height": 1200})
    _login(page, live_server, "/admin/catalog/promotion/preview/")
    page.click("a.recent-user:text-is('u1')")  # offered, not guessed
    page.wait_for_selector("#preview-why", timeout=15000)
    assert page.input_value("#id_user_id") == "u1"
    why = page.locator("#preview-why tbody tr")
    assert why.count() == 3
    wok_row = page.locator("#preview-why tr[data-code='out_of_stock']")
    assert "Wok week" in wok_row.inner_text() and "demo-002637 is out of stock" in wok_row.inner_text()
    assert "Another surface" in page.locator("#preview-why tr[data-code='other_surface']").inner_text()
    assert "kettle is at position 2" in page.locator("#preview-why tr.applied").inner_text()
    first_column = page.locator("section[data-column='1'] tbody tr")
    assert "kettle" in first_column.nth(1).inner_text()
    page.locator("#preview-why").scroll_into_view_if_needed()
    page.screenshot(path=str(OUTPUT / "promotion_preview_why_not.png"), full_page=True)
    page.close()

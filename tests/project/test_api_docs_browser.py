"""Swagger UI in a real headless Chromium: its Authorize box tells what to type, and the key typed that way
works for a request made from the page."""

from __future__ import annotations

from tests.browser import OUTPUT, needs_chromium
from tests.factories import ItemFactory

pytestmark = needs_chromium


def test_authorize_box_says_to_type_api_key_and_the_key_so_typed_works(
    live_server, transactional_db, browser
):
    from core.models import ApiKey

    OUTPUT.mkdir(exist_ok=True)
    _key, raw = ApiKey.generate(name="docs")
    ItemFactory(external_id="lamp-1", title="Desk lamp")
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(live_server.url + "/api/docs/")
    page.locator("button.authorize").first.click(timeout=20000)
    dialog = page.locator(".modal-ux")
    dialog.wait_for(timeout=15000)
    assert "Type Api-Key <key>" in dialog.inner_text()
    dialog.locator("input").first.fill(f"Api-Key {raw}")
    page.screenshot(path=str(OUTPUT / "api-docs-authorize.png"))
    dialog.locator("button.authorize").click()
    dialog.locator("button.btn-done").click()

    operation = page.locator(".opblock-get", has=page.locator('[data-path="/api/v1/items"]'))
    operation.locator(".opblock-summary").first.click()
    operation.locator(".try-out__btn").click()
    with page.expect_response(lambda r: "/api/v1/items" in r.url and r.request.method == "GET") as answer:
        operation.locator(".execute").click()
    response = answer.value
    assert response.request.headers["authorization"] == f"Api-Key {raw}"
    assert response.status == 200 and response.json()["items"][0]["id"] == "lamp-1"
    page.close()

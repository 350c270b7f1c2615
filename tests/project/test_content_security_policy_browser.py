"""The Content-Security-Policy in a real headless Chromium (Debian's, driven by Playwright): every page a
person uses (admin index with its charts, a change form, the promotion preview, the report pages, the
storefront home and item pages, the API docs) works and the browser reports no CSP violation."""

from __future__ import annotations

import importlib

from tests.browser import OUTPUT, needs_chromium
from tests.factories import ItemFactory, leading

# Every violation the page sees, whatever blocked it (script, style, image, fetch, inline or not).
RECORD_VIOLATIONS = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', function (e) {
  window.__csp.push([e.effectiveDirective, e.blockedURI, (e.sourceFile || '') + ':' + e.lineNumber,
                     (e.sample || '').slice(0, 80)].join(' | '));
});
"""

pytestmark = needs_chromium


class Visit:
    """One browser page that records CSP violations, from the console and the DOM event both."""

    def __init__(self, browser):
        self.page = browser.new_page(viewport={"width": 1280, "height": 900})
        self.console: list[str] = []
        self.page.on(
            "console",
            lambda m: self.console.append(m.text) if "Content Security Policy" in m.text else None,
        )
        self.page.add_init_script(RECORD_VIOLATIONS)

    def violations(self) -> list[str]:
        return self.console + self.page.evaluate("() => window.__csp || []")

    def check(self, name: str) -> None:
        self.page.wait_for_timeout(300)  # let late reports arrive
        self.page.screenshot(path=str(OUTPUT / f"csp-{name}.png"), full_page=True)
        found = self.violations()
        assert not found, f"{name}: {found}"


def test_no_page_reports_a_csp_violation(live_server, transactional_db, browser, django_user_model):
    OUTPUT.mkdir(exist_ok=True)
    from django.apps import apps

    importlib.import_module("analytics.migrations.0002_admin_index_charts").charts_create(apps, None)
    items = [
        ItemFactory(
            category_path=[],
            published_at=None,
            title=f"Ceramic mug no. {n}",
            embedding=leading(0.5, *([0.0] * n), 1.0),
            price=8 + n,
        )
        for n in range(6)
    ]
    django_user_model.objects.create_superuser("boss", "b@example.com", "pw-boss-1")
    base = live_server.url

    visit = Visit(browser)
    page = visit.page
    response = page.goto(base + "/")
    policy = dict(d.strip().split(" ", 1) for d in response.headers["content-security-policy"].split(";"))
    assert policy["default-src"] == "'self'"
    assert policy["script-src"].startswith("'self'") and "unsafe" not in policy["script-src"]
    page.locator('[data-recsys="trending"] a.card').first.wait_for(timeout=15000)
    visit.check("storefront-home")
    page.goto(base + f"/items/{items[0].external_id}")
    page.locator('[data-recsys="similar"] a.card').first.wait_for(timeout=15000)
    visit.check("storefront-item")

    page.goto(base + "/admin/login/?next=/admin/")
    visit.check("admin-login")
    page.fill("#id_username", "boss")
    page.fill("#id_password", "pw-boss-1")
    page.click("input[type=submit]")
    page.wait_for_url(base + "/admin/", timeout=15000)
    page.wait_for_selector(".admin_charts svg .nv-series, .admin_charts svg .nv-bar, .nvd3", timeout=20000)
    visit.check("admin-index")
    page.goto(base + f"/admin/catalog/item/{items[0].pk}/change/")
    page.wait_for_selector("#item_form", timeout=15000)
    visit.check("admin-change-form")
    page.goto(base + "/admin/catalog/promotion/preview/?scenario=trending&limit=5")
    page.wait_for_selector("section[data-column='2']", timeout=15000)
    visit.check("admin-promotion-preview")

    for name, path in [
        ("reports-overview", "/reports/"),
        ("reports-long-tail", "/reports/long-tail"),
        ("reports-top", "/reports/top"),
        ("reports-evaluations", "/reports/evaluations"),
    ]:
        page.goto(base + path)
        page.wait_for_selector("main", timeout=15000)
        visit.check(name)

    page.goto(base + "/api/docs/")
    page.wait_for_selector(".swagger-ui .info .title", timeout=20000)
    assert "recsys API" in page.locator(".swagger-ui .info .title").inner_text()
    page.locator(".opblock").first.wait_for(timeout=15000)
    visit.check("api-docs")
    page.close()


def test_the_login_lockout_page_is_clear_and_within_the_policy(
    live_server, transactional_db, browser, django_user_model, settings
):
    OUTPUT.mkdir(exist_ok=True)
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    django_user_model.objects.create_superuser("boss", "b@example.com", "pw-boss-1")
    visit = Visit(browser)
    page = visit.page
    for password in ["wrong"] * settings.AXES_FAILURE_LIMIT + ["pw-boss-1"]:
        page.goto(live_server.url + "/admin/login/?next=/admin/")
        page.fill("#id_username", "boss")
        page.fill("#id_password", password)
        page.click("input[type=submit]")
        page.wait_for_load_state()
    assert "Too many failed logins" in page.locator("h1").inner_text()
    visit.check("admin-locked-out")
    page.close()

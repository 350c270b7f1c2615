"""Who gets in where: staff-only pages, CSRF on every cookie-authenticated form, the API key model, and
no secrets in the repository.

The key model: one deployment serves one shop. Every active API key is a key of that shop and can read
and write all of its data (items, events, users, erasure); keys are not scoped per shop or environment,
so object-level authorization is "any valid key of this deployment". Run one deployment (database) per
shop or environment. Revoking a key (admin: is_active off) shuts it out at once."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from django.contrib import admin
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from rest_framework.test import APIClient
from rest_framework.views import APIView

from core.models import ApiKey

pytestmark = pytest.mark.django_db
REPO = Path(__file__).resolve().parents[2]


def routes(resolver=None, prefix: str = "") -> list[tuple[str, object]]:
    """(path, callback) of every URL pattern; path parameters filled with '1'."""
    found = []
    for pattern in (resolver or get_resolver()).url_patterns:
        text = prefix + re.sub(r"<(?:\w+:)?\w+>", "1", str(pattern.pattern)).lstrip("^").rstrip("$")
        text = text.replace("\\Z", "").replace("\\", "")
        if isinstance(pattern, URLResolver):
            found += routes(pattern, text)
        elif isinstance(pattern, URLPattern):
            found.append(("/" + text, pattern.callback))
    return found


STAFF_PREFIXES = ("/admin/", "/reports/", "/admin_tools_stats/")
PUBLIC = {"/admin/login/", "/admin/logout/", "/admin/password_reset/"}


def staff_routes() -> list[str]:
    paths = {p for p, _ in routes() if p.startswith(STAFF_PREFIXES) and "(?P" not in p and "(" not in p}
    return sorted(p for p in paths if p not in PUBLIC and not p.startswith("/admin/jsi18n"))


@pytest.fixture
def non_staff(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("shopper", password="pw-shopper-1"))
    return client


def test_every_admin_and_report_page_is_closed_to_anonymous_visitors_and_non_staff(client, non_staff):
    pages = staff_routes()
    assert len(pages) > 20 and "/reports/" in pages
    anonymous = Client()
    for path in pages:
        for who, c in (("anonymous", anonymous), ("non-staff", non_staff)):
            response = c.get(path)
            assert response.status_code in (302, 403, 404), (who, path, response.status_code)
            if response.status_code == 302:
                assert "/login/" in response["Location"], (who, path, response["Location"])


def test_no_cookie_authenticated_view_is_csrf_exempt():
    exempt = []
    for path, callback in routes():
        if not getattr(callback, "csrf_exempt", False):
            continue
        view_class = getattr(callback, "cls", None)
        if view_class is not None and issubclass(view_class, APIView):
            auth = [type(a).__name__ for a in view_class().get_authenticators()]
            if "SessionAuthentication" not in auth:
                continue  # API key in a header: no ambient credential for a forged request to ride on
        exempt.append(path)
    assert exempt == []


def test_admin_forms_refuse_a_post_without_the_csrf_token(django_user_model):
    staff = django_user_model.objects.create_superuser("boss", password="pw-boss-123")
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff)
    models = list(admin.site._registry)
    assert models
    for model in models:
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        response = client.post(url, {"action": "delete_selected", "_selected_action": ["1"]})
        assert response.status_code == 403, url
    assert Client(enforce_csrf_checks=True).post("/admin/login/", {"username": "boss"}).status_code == 403


def test_any_active_key_of_the_deployment_reaches_all_its_data_and_a_revoked_one_nothing(api):
    assert (
        api.post("/api/v1/items", {"items": [{"id": "sku-1", "title": "Lamp"}]}, format="json").status_code
        == 200
    )
    other_key, raw = ApiKey.generate(name="second storefront")
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    assert other.get("/api/v1/items/sku-1").status_code == 200  # not scoped: one deployment = one shop
    other_key.is_active = False
    other_key.save()
    assert other.get("/api/v1/items/sku-1").status_code == 401
    assert other.delete("/api/v1/users/anyone").status_code == 401


SECRET_PATTERNS = {
    "private key": re.compile(r"-----BEGIN (?:RSA |EC |OPENSSH |DSA )?PRIVATE KEY-----"),
    "AWS access key": re.compile(r"AKIA[0-9A-Z]{16}"),
    "OpenAI-style key": re.compile(r"\bsk-[A-Za-z0-9_-]{20,}"),
    "GitHub token": re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}"),
    "Slack token": re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),
    "hard-coded SECRET_KEY": re.compile(r"SECRET_KEY\s*=\s*['\"][^'\"]{8,}['\"]"),
    "password in a URL": re.compile(
        r"://[^/\s:@'\"]+:(?!(?:pass|password|secret|PASSWORD|\*+|<[^>]*>)@)[^/\s@'\"{}]{3,}@"
    ),
}


def test_no_secret_is_committed_to_the_repository():
    files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    hits = []
    for name in files.split():
        path = REPO / name
        if path.suffix in {".png", ".jpg", ".gz", ".ico", ".woff", ".woff2", ".ttf"} or not path.is_file():
            continue
        text = path.read_text(errors="ignore")
        for what, pattern in SECRET_PATTERNS.items():
            for match in pattern.finditer(text):
                hits.append(f"{name}: {what}: {match.group(0)[:40]}")
    assert hits == []
    ignored = subprocess.run(
        ["git", "check-ignore", "var/secret_key"], cwd=REPO, capture_output=True, text=True
    )
    assert ignored.returncode == 0, "the generated secret key file must be ignored by git"


def test_settings_read_secrets_from_the_environment_only():
    settings_text = (REPO / "recsys_project" / "settings.py").read_text()
    assert 'os.environ.get("SECRET_KEY")' in settings_text
    assert 'os.environ.get("RECSYS_EMBEDDING_API_KEY", "")' in settings_text

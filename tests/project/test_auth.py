from __future__ import annotations

import time

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework.test import APIClient

from core import authentication
from core.authentication import ApiKeyRateThrottle
from core.models import ApiKey, api_key_hash

pytestmark = pytest.mark.django_db
ITEM_URL = "/api/v1/items/sku-1"


def client_with(header: str | None) -> APIClient:
    client = APIClient()
    if header is not None:
        client.credentials(HTTP_AUTHORIZATION=header)
    return client


def assert_401(response) -> None:
    assert response.status_code == 401, response.content
    body = response.json()
    assert set(body) == {"error", "detail"}
    assert body["error"] in {"not_authenticated", "authentication_failed"}
    assert response["WWW-Authenticate"] == "Api-Key"


def test_request_without_key_gets_401_with_the_error_shape(anon_api):
    assert_401(anon_api.get(ITEM_URL))
    assert_401(anon_api.post("/api/v1/events", {"events": []}, format="json"))
    assert_401(anon_api.delete("/api/v1/users/u1"))


@pytest.mark.parametrize("header", ["Api-Key rk_not_a_real_key", "Bearer something", "Api-Key ", "Api-Key"])
def test_bad_key_or_malformed_header_gets_401(header):
    assert_401(client_with(header).get(ITEM_URL))


def test_key_revoked_here_gets_401_at_once(api_key):
    client = client_with(f"Api-Key {api_key}")
    assert client.get(ITEM_URL).status_code == 404  # authenticated: the item just does not exist
    key = ApiKey.objects.get()
    key.is_active = False
    key.save()  # what the admin does
    assert_401(client.get(ITEM_URL))


def test_key_revoked_by_another_process_gets_401_within_the_cache_bound(api_key, monkeypatch):
    client = client_with(f"Api-Key {api_key}")
    assert client.get(ITEM_URL).status_code == 404
    ApiKey.objects.update(is_active=False)  # no signal reaches this process's cache
    assert client.get(ITEM_URL).status_code == 404  # still cached: the documented bound
    later = time.monotonic() + settings.RECSYS_API_KEY_CACHE_SECONDS
    monkeypatch.setattr(authentication.time, "monotonic", lambda: later)
    assert_401(client.get(ITEM_URL))


def test_deleted_key_gets_401_at_once(api_key):
    client = client_with(f"Api-Key {api_key}")
    assert client.get(ITEM_URL).status_code == 404
    ApiKey.objects.get().delete()
    assert_401(client.get(ITEM_URL))


def test_regenerated_key_stops_the_old_one_at_once(api_key):
    client = client_with(f"Api-Key {api_key}")
    assert client.get(ITEM_URL).status_code == 404
    key = ApiKey.objects.get()
    new = key.assign_new_key()
    key.save()
    assert_401(client.get(ITEM_URL))
    assert client_with(f"Api-Key {new}").get(ITEM_URL).status_code == 404


def test_a_valid_key_is_looked_up_once_within_the_cache_bound(api_key):
    client = client_with(f"Api-Key {api_key}")
    client.get(ITEM_URL)  # reads the key (and touches last_used_at)
    with CaptureQueriesContext(connection) as queries:
        assert client.get(ITEM_URL).status_code == 404
    assert not [q for q in queries.captured_queries if "core_apikey" in q["sql"]]


def test_keys_are_stored_hashed_only(api_key):
    key = ApiKey.objects.get()
    assert key.key_hash == api_key_hash(api_key)
    stored = [str(v) for v in ApiKey.objects.values_list(flat=False).get()]
    assert api_key not in stored
    assert key.prefix == api_key[:8]


def test_each_key_is_throttled_on_its_own(monkeypatch):
    monkeypatch.setattr(ApiKeyRateThrottle, "THROTTLE_RATES", {"api_key": "3/min"})
    cache.clear()
    _, first = ApiKey.generate(name="shop one")
    _, second = ApiKey.generate(name="shop two")
    one, two = client_with(f"Api-Key {first}"), client_with(f"Api-Key {second}")
    assert [one.get(ITEM_URL).status_code for _ in range(3)] == [404, 404, 404]
    limited = one.get(ITEM_URL)
    assert limited.status_code == 429
    assert limited.json()["error"] == "throttled"
    assert "Retry-After" in limited
    assert two.get(ITEM_URL).status_code == 404  # the other key has its own budget


def admin_login(client, username: str, password: str) -> None:
    """Through the admin's login form, as a person would (and as the login lockout sees it)."""
    client.post("/admin/login/", {"username": username, "password": password})


def test_admin_requires_staff_login(client):
    assert client.get("/admin/").status_code == 302
    User.objects.create_user("shopper", password="pw-shopper-123")
    admin_login(client, "shopper", "pw-shopper-123")
    response = client.get("/admin/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    User.objects.create_user("boss", password="pw-boss-123", is_staff=True, is_superuser=True)
    admin_login(client, "boss", "pw-boss-123")
    assert client.get("/admin/").status_code == 200


def test_api_key_created_in_admin_is_shown_once_and_works(client):
    User.objects.create_superuser("boss", password="pw-boss-123")
    admin_login(client, "boss", "pw-boss-123")
    response = client.post(
        reverse("admin:core_apikey_add"), {"name": "web shop", "is_active": "on"}, follow=True
    )
    assert response.status_code == 200
    [message] = [str(m) for m in response.context["messages"] if "New API key" in str(m)]
    raw = message.rsplit(" ", 1)[-1]
    key = ApiKey.objects.get(name="web shop")
    assert key.key_hash == api_key_hash(raw)
    assert client_with(f"Api-Key {raw}").get(ITEM_URL).status_code == 404
    assert raw not in client.get(reverse("admin:core_apikey_change", args=[key.pk])).content.decode()


def test_api_key_does_not_open_the_admin(api_key):
    response = client_with(f"Api-Key {api_key}").get("/admin/")
    assert response.status_code == 302

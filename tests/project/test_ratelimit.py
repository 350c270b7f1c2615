"""Rate limits counted in the real Redis: exact under concurrency, per key for the API, per client address
for requests without a valid key and for the public storefront."""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from core import ratelimit
from core.authentication import AddressRateThrottle, ApiKeyRateThrottle
from core.models import ApiKey

ITEM_URL = "/api/v1/items/sku-1"


@pytest.fixture(autouse=True)
def fresh_counters():
    """Counters live in Redis for a window: start each test with none of them."""
    client = ratelimit._client(settings.REDIS_URL)
    for key in client.scan_iter(f"{settings.RECSYS_REDIS_PREFIX}ratelimit:*"):
        client.delete(key)
    # a fixed window must not roll over in the middle of a test
    if time.time() % 60 > 55:
        time.sleep(60 - time.time() % 60 + 0.1)


def _client(header: str | None = None, address: str = "127.0.0.1", **extra) -> APIClient:
    client = APIClient(REMOTE_ADDR=address, **extra)
    if header:
        client.credentials(HTTP_AUTHORIZATION=header)
    return client


def test_concurrent_requests_through_a_real_server_allow_exactly_the_limit(
    live_server, transactional_db, monkeypatch
):
    monkeypatch.setattr(ApiKeyRateThrottle, "THROTTLE_RATES", {"api_key": "60/min"})
    _, raw = ApiKey.generate(name="shop")
    statuses: list[int] = []
    lock = threading.Lock()

    def hammer():
        for _ in range(20):
            request = urllib.request.Request(live_server.url + ITEM_URL)
            request.add_header("Authorization", f"Api-Key {raw}")
            try:
                status = urllib.request.urlopen(request, timeout=30).status
            except urllib.error.HTTPError as exc:
                status = exc.code
            with lock:
                statuses.append(status)

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(statuses) == 160
    assert statuses.count(404) == 60  # allowed (the item does not exist)
    assert statuses.count(429) == 100


@pytest.mark.django_db
def test_bad_or_missing_keys_get_401_then_429_per_client_address(monkeypatch, api_key):
    monkeypatch.setattr(AddressRateThrottle, "THROTTLE_RATES", {"api_anon": "3/min"})
    bad, none = _client("Api-Key rk_not_a_real_key"), _client()
    assert [bad.get(ITEM_URL).status_code for _ in range(2)] == [401, 401]
    assert none.get(ITEM_URL).status_code == 401
    limited = bad.get(ITEM_URL)
    assert limited.status_code == 429
    assert limited.json()["error"] == "throttled"
    assert 1 <= int(limited["Retry-After"]) <= 60
    assert none.get(ITEM_URL).status_code == 429
    assert _client("Bearer x").get(ITEM_URL).status_code == 429  # a malformed header counts too
    # another address has its own budget, and a valid key from the throttled address is not affected
    assert _client("Api-Key rk_not_a_real_key", address="10.0.0.2").get(ITEM_URL).status_code == 401
    assert _client(f"Api-Key {api_key}").get(ITEM_URL).status_code == 404


@pytest.mark.django_db
def test_a_forged_x_forwarded_for_does_not_buy_a_new_budget(monkeypatch):
    monkeypatch.setattr(AddressRateThrottle, "THROTTLE_RATES", {"api_anon": "2/min"})
    codes = [
        _client("Api-Key nope", HTTP_X_FORWARDED_FOR=f"203.0.113.{n}").get(ITEM_URL).status_code
        for n in range(4)
    ]
    assert codes == [401, 401, 429, 429]


@pytest.mark.django_db
def test_another_copy_sharing_the_redis_keeps_its_own_counters(monkeypatch, settings):
    monkeypatch.setattr(AddressRateThrottle, "THROTTLE_RATES", {"api_anon": "1/min"})
    ours = settings.RECSYS_REDIS_PREFIX
    settings.RECSYS_REDIS_PREFIX = "recsys:another-copy:"
    try:
        assert [_client("Api-Key nope").get(ITEM_URL).status_code for _ in range(2)] == [401, 429]
    finally:
        client = ratelimit._client(settings.REDIS_URL)
        for key in client.scan_iter("recsys:another-copy:ratelimit:*"):
            client.delete(key)
        settings.RECSYS_REDIS_PREFIX = ours
    # the same address has its whole budget here: the other copy's counter is not ours
    assert _client("Api-Key nope").get(ITEM_URL).status_code == 401


@pytest.mark.django_db
def test_behind_a_trusted_proxy_the_address_it_saw_is_the_client(monkeypatch, settings):
    settings.RECSYS_NUM_PROXIES = 1
    monkeypatch.setattr(AddressRateThrottle, "THROTTLE_RATES", {"api_anon": "1/min"})
    proxy = "10.0.0.1"
    first = _client("Api-Key nope", address=proxy, HTTP_X_FORWARDED_FOR="6.6.6.6, 198.51.100.7")
    second = _client("Api-Key nope", address=proxy, HTTP_X_FORWARDED_FOR="198.51.100.8")
    assert [first.get(ITEM_URL).status_code, first.get(ITEM_URL).status_code] == [401, 429]
    assert second.get(ITEM_URL).status_code == 401


@pytest.mark.django_db
def test_limits_fail_open_when_redis_is_down(monkeypatch, settings):
    monkeypatch.setattr(ApiKeyRateThrottle, "THROTTLE_RATES", {"api_key": "1/min"})
    monkeypatch.setattr(AddressRateThrottle, "THROTTLE_RATES", {"api_anon": "1/min"})
    settings.RECSYS_STOREFRONT_RATE = "1/min"
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    _, raw = ApiKey.generate(name="shop")
    assert [_client(f"Api-Key {raw}").get(ITEM_URL).status_code for _ in range(3)] == [404, 404, 404]
    assert [_client("Api-Key nope").get(ITEM_URL).status_code for _ in range(3)] == [401, 401, 401]
    assert [_client().get("/storefront/recommendations/trending").status_code for _ in range(3)] == [200] * 3


@pytest.mark.django_db
def test_storefront_routes_are_limited_per_client_address_with_a_json_429(settings):
    settings.RECSYS_STOREFRONT_RATE = "4/min"
    shopper = _client()
    assert shopper.get("/").status_code == 200
    assert shopper.get("/storefront/recommendations/trending").status_code == 200
    assert shopper.post("/storefront/events", {"events": []}, format="json").status_code == 400
    assert shopper.get("/catalog").status_code == 200
    for path in ("/", "/catalog", "/items/x", "/storefront/recommendations/user"):
        limited = shopper.get(path)
        assert limited.status_code == 429, path
        assert limited.json()["error"] == "throttled"
        assert 1 <= int(limited["Retry-After"]) <= 60
    assert shopper.post("/storefront/events", {"events": []}, format="json").status_code == 429
    assert _client(address="10.0.0.9").get("/storefront/recommendations/trending").status_code == 200

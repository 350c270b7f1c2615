"""Abuse and resource caps: event spam does not poison a user's vector, one request cannot ask for
unbounded work (limit, batch size, string sizes, body size, ANN search effort), and item PATCH cannot
mass-assign internal fields."""

from __future__ import annotations

import re
from datetime import timedelta

import numpy as np
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from catalog.models import Item
from interactions.models import UserProfile
from interactions.user_vectors import user_vectors_apply_all, user_vectors_rebuild
from recommendations.retrieval.pgvector_backend import EF_SEARCH, MAX_SCAN_TUPLES
from tests.factories import ItemFactory, UserProfileFactory, topic

pytestmark = pytest.mark.django_db


def post_events(api, events):
    return api.post("/api/v1/events", {"events": events}, format="json")


def views(user, item, n, at, tag):
    return [
        {"event_id": f"{tag}-{i}", "user_id": user, "item_id": item, "event_type": "view",
         "timestamp": (at + timedelta(milliseconds=i)).isoformat()}
        for i in range(n)
    ]  # fmt: skip


def test_a_burst_of_events_is_down_weighted_then_capped_in_the_user_vector(api, settings):
    settings.RECSYS_BOT_EVENTS_PER_MINUTE, settings.RECSYS_BOT_WEIGHT = 20, 0.1
    settings.RECSYS_MAX_USER_EVENTS_PER_MINUTE = 60
    ItemFactory(external_id="liked", embedding=topic(1))
    ItemFactory(external_id="spammed", embedding=topic(2))
    at = timezone.now().replace(second=0, microsecond=0) - timedelta(minutes=5)
    assert post_events(api, views("bot", "liked", 1, at - timedelta(minutes=1), "honest")).status_code == 200
    response = post_events(api, views("bot", "spammed", 500, at, "burst"))
    assert response.json()["accepted"] == 500  # stored: nothing a client sent is dropped

    user_vectors_apply_all()
    profile = UserProfile.objects.get(external_id="bot")
    # 1 honest view + 20 at full weight + 40 at 0.1 + 440 at 0 (decay over a minute is ~1e-5)
    assert profile.weight_sum == pytest.approx(1 + 20 + 4, rel=1e-3)
    vector = np.asarray(profile.embedding)
    assert vector @ topic(2) > vector @ topic(1) > 0.03  # the liked item still shows through

    user_vectors_rebuild(user_ids=["bot"])  # the rebuild ranks events the same way
    assert UserProfile.objects.get(external_id="bot").weight_sum == pytest.approx(25, rel=1e-3)


def test_a_large_basket_bought_in_one_minute_keeps_its_full_weight(api):
    ItemFactory(external_id="b", embedding=topic(1))
    events = views("buyer", "b", 150, timezone.now() - timedelta(hours=1), "basket")
    for event in events:
        event["event_type"] = "purchase"
    post_events(api, events)
    user_vectors_apply_all()
    weight = UserProfile.objects.get(external_id="buyer").weight_sum
    assert weight == pytest.approx(150 * 10.0, rel=1e-3)  # purchase weight 10, none capped


def test_events_at_a_human_rate_keep_their_full_weight(api):
    ItemFactory(external_id="a", embedding=topic(1))
    at = timezone.now() - timedelta(hours=1)
    events = []
    for minute in range(10):
        events += views("person", "a", 5, at + timedelta(minutes=minute), f"m{minute}")
    post_events(api, events)
    user_vectors_apply_all()
    half_life = 30 * 86400
    expected = sum(2 ** (-(9 - m) * 60 / half_life) for m in range(10)) * 5
    assert UserProfile.objects.get(external_id="person").weight_sum == pytest.approx(expected, rel=1e-3)


def test_limit_is_capped_at_100_and_nonsense_limits_are_refused(api):
    for n in range(120):
        ItemFactory(external_id=f"x{n}", embedding=topic(n % 7, jitter=0.1, seed=n))
    response = api.get("/api/v1/recommendations/trending?limit=1000000")
    assert response.status_code == 200
    assert len(response.json()["items"]) <= 100
    for bad in ("0", "-5", "abc", "1e9"):
        response = api.get(f"/api/v1/recommendations/trending?limit={bad}")
        assert response.status_code == 400 and "limit" in response.json()["fields"], bad


def test_the_ann_search_effort_is_fixed_whatever_the_request_asks(api):
    for n in range(30):
        ItemFactory(external_id=f"y{n}", embedding=topic(n % 5, jitter=0.1, seed=n))
    UserProfileFactory(external_id="shopper", embedding=topic(1))
    with CaptureQueriesContext(connection) as queries:
        response = api.get("/api/v1/recommendations/users/shopper?limit=100000&ef_search=100000")
    assert response.status_code == 200
    ann = [q["sql"] for q in queries.captured_queries if "hnsw.ef_search" in q["sql"]]
    assert ann, "no ANN query was run"
    for sql in ann:
        assert f"hnsw.ef_search = {EF_SEARCH}" in sql and f"hnsw.max_scan_tuples = {MAX_SCAN_TUPLES}" in sql
        k = [int(n) for n in re.findall(r"LIMIT (\d+)", sql)]
        assert k and max(k) <= 2000  # candidate_k: 100 by default, at most 2,000 (RerankProfile validator)


def test_batches_bodies_and_strings_have_caps(api, settings):
    big = [{"event_id": f"e{i}", "user_id": "u", "item_id": "i", "event_type": "view",
            "timestamp": "2026-01-01T00:00:00Z"} for i in range(1001)]  # fmt: skip
    assert post_events(api, big).status_code == 400
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    response = api.post("/api/v1/items", {"items": [{"id": "a", "title": "x" * 20_000}]}, format="json")
    assert response.status_code == 413 and response.json()["error"]
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 16 * 1024 * 1024
    response = api.post("/api/v1/items", {"items": [{"id": "a", "title": "x" * 501}]}, format="json")
    assert response.status_code == 400 and "title" in response.json()["rejected"][0]["errors"]
    response = post_events(api, [{**big[0], "user_id": "u" * 129}])
    assert response.status_code == 400 and "user_id" in response.json()["rejected"][0]["errors"]
    response = api.get("/api/v1/search?q=" + "word " * 200)
    assert response.status_code == 400 and "q" in response.json()["fields"]
    response = api.get("/api/v1/recommendations/trending?exclude=" + ",".join(f"i{n}" for n in range(501)))
    assert response.status_code == 400 and "exclude" in response.json()["fields"]


@pytest.mark.parametrize(
    "field, value",
    [("embedding_dirty", False), ("is_active", False), ("external_id", "other"), ("created_at", "2000-01-01"),
     ("embedding_model", "x"), ("id", 12345)],
)  # fmt: skip
def test_item_patch_cannot_set_internal_fields(api, field, value):
    item = ItemFactory(external_id="sku-1", embedding_dirty=True)
    before = {
        f: getattr(item, f) for f in ("embedding_dirty", "is_active", "external_id", "embedding_model", "id")
    }
    response = api.patch("/api/v1/items/sku-1", {field: value}, format="json")
    assert response.status_code == 400 and field in response.json()["fields"]
    item = Item.objects.get(pk=item.pk)
    assert {f: getattr(item, f) for f in before} == before

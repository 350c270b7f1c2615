"""`GET /api/v1/users/{id}`: a user's profile and recent events, for support staff."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.factories import EventFactory, ItemFactory, UserProfileFactory, topic

pytestmark = pytest.mark.django_db
BASELINE = json.loads((Path(__file__).parent / "query_counts.json").read_text())


@pytest.fixture
def alice():
    UserProfileFactory(external_id="alice", embedding=topic(1), event_count=3, purchase_count=1)
    mug = ItemFactory(external_id="mug")
    now = timezone.now()
    EventFactory(user_id="alice", item=mug, event_type="view", timestamp=now - timedelta(hours=3))
    EventFactory(user_id="alice", item=mug, event_type="add_to_cart", timestamp=now - timedelta(hours=2))
    EventFactory(
        user_id="alice",
        item=mug,
        event_type="purchase",
        timestamp=now - timedelta(hours=1),
        value=9,
        quantity=2,
    )
    EventFactory(user_id="bob", item=mug, event_type="view", timestamp=now)


def test_profile_counts_and_newest_events_first(api, alice):
    response = api.get("/api/v1/users/alice")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["user_id"] == "alice"
    assert body["profile"]["has_vector"] is True
    assert (body["profile"]["event_count"], body["profile"]["purchase_count"]) == (3, 1)
    assert body["event_counts"] == {"view": 1, "add_to_cart": 1, "purchase": 1}
    assert [e["event_type"] for e in body["events"]] == ["purchase", "add_to_cart", "view"]
    purchase = body["events"][0]
    assert purchase["item_id"] == "mug" and purchase["value"] == "9.0000" and purchase["quantity"] == 2


def test_limit_keeps_the_newest_events_and_counts_them_all(api, alice):
    body = api.get("/api/v1/users/alice", {"limit": 1}).json()
    assert [e["event_type"] for e in body["events"]] == ["purchase"]
    assert sum(body["event_counts"].values()) == 3


def test_a_user_with_events_but_no_vector_yet_has_a_null_profile(api):
    EventFactory(user_id="carol", item=ItemFactory(), event_type="view")
    body = api.get("/api/v1/users/carol").json()
    assert body["profile"] is None and body["event_counts"] == {"view": 1}


def test_unknown_user_is_a_json_404(api, alice):
    response = api.get("/api/v1/users/nobody")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_bad_limit_is_a_400_naming_it(api, alice):
    response = api.get("/api/v1/users/alice", {"limit": "-3"})
    assert response.status_code == 400 and "limit" in response.json()["fields"]


def test_needs_an_api_key(anon_api, alice):
    assert anon_api.get("/api/v1/users/alice").status_code == 401


def test_delete_still_erases(api, alice):
    assert api.delete("/api/v1/users/alice").status_code == 200
    assert api.get("/api/v1/users/alice").status_code == 404


def test_query_count_is_the_baseline_whatever_the_history(api, alice):
    mug = ItemFactory(external_id="mug-2")
    for _ in range(40):
        EventFactory(user_id="alice", item=mug, event_type="view")
    counts = []
    for limit in (2, 40):
        api.get("/api/v1/users/alice", {"limit": limit})  # warm: the API key (cached) and its touch
        with CaptureQueriesContext(connection) as queries:
            response = api.get("/api/v1/users/alice", {"limit": limit})
        assert response.status_code == 200 and len(response.json()["events"]) == limit
        counts.append(len(queries.captured_queries))
    assert counts == [BASELINE["user_get"]] * 2, counts

from __future__ import annotations

import pytest

from interactions.models import Event, UserProfile

pytestmark = pytest.mark.django_db


def send(api, user_id, n, *, start=0):
    events = [
        {
            "event_id": f"{user_id}-{i}",
            "user_id": user_id,
            "session_id": f"s-{user_id}",
            "item_id": "sku-1",
            "event_type": "view",
            "timestamp": "2025-01-01T00:00:00Z",
        }
        for i in range(start, start + n)
    ]
    assert api.post("/api/v1/events", {"events": events}, format="json").status_code == 200


def test_erasing_a_user_removes_their_events_and_profile_and_reports_counts(api):
    send(api, "alice", 3)
    send(api, "bob", 2)
    response = api.delete("/api/v1/users/alice")
    assert response.status_code == 200
    body = response.json()
    assert body["user_id"] == "alice"
    assert body["deleted"]["events"] == 3
    assert body["deleted"]["profiles"] == 1
    assert not Event.objects.filter(user_id="alice").exists()
    assert not UserProfile.objects.filter(external_id="alice").exists()
    assert Event.objects.filter(user_id="bob").count() == 2  # nobody else is touched
    assert UserProfile.objects.filter(external_id="bob").exists()


def test_erasing_an_unknown_user_is_harmless_and_says_nothing_was_deleted(api):
    response = api.delete("/api/v1/users/nobody")
    assert response.status_code == 200
    assert response.json()["deleted"]["events"] == 0
    assert response.json()["deleted"]["profiles"] == 0


def test_user_ids_with_slashes_and_spaces_are_erased_exactly(api):
    send(api, "shop/a b", 1)
    send(api, "shop", 1)
    assert api.delete("/api/v1/users/shop/a%20b").json()["deleted"]["events"] == 1
    assert Event.objects.filter(user_id="shop").count() == 1


def test_erasure_requires_a_key(anon_api, api):
    send(api, "alice", 1)
    assert anon_api.delete("/api/v1/users/alice").status_code == 401
    assert Event.objects.filter(user_id="alice").count() == 1

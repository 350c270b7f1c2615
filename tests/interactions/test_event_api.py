from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from catalog.models import Item
from interactions.models import Event, UserProfile

pytestmark = pytest.mark.django_db

URL = "/api/v1/events"


def event(n: int = 1, **overrides) -> dict:
    base = {
        "event_id": f"ev-{n}",
        "user_id": "u-1",
        "session_id": "s-1",
        "item_id": "sku-1",
        "event_type": "view",
        "timestamp": "2025-03-01T10:00:00Z",
        "device_type": "mobile",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not ...}


def post(api, events):
    return api.post(URL, {"events": events}, format="json")


def test_valid_batch_is_stored_with_all_fields(api):
    rec = "0b7e6a2e-2f1e-4a59-9d1c-7d0b6f3a9c11"
    response = post(
        api,
        [
            event(1),
            event(
                2,
                event_type="purchase",
                value="19.99",
                quantity=2,
                recommendation_id=rec,
                surface="pdp",
                position=3,
            ),
        ],
    )
    assert response.status_code == 200, response.content
    assert response.json() == {"accepted": 2, "duplicates": 0, "rejected": []}
    purchase = Event.objects.get(event_id="ev-2")
    assert purchase.event_type == "purchase"
    assert str(purchase.value) == "19.9900"
    assert purchase.quantity == 2
    assert str(purchase.recommendation_id) == rec
    assert (purchase.surface, purchase.position, purchase.device_type) == ("pdp", 3, "mobile")
    profile = UserProfile.objects.get(external_id="u-1")
    assert (profile.event_count, profile.purchase_count) == (2, 1)


def test_replayed_batch_changes_no_counts(api):
    batch = [event(1), event(2, event_type="purchase")]
    assert post(api, batch).json()["accepted"] == 2
    replay = post(api, batch)
    assert replay.status_code == 200
    assert replay.json() == {"accepted": 0, "duplicates": 2, "rejected": []}
    assert Event.objects.count() == 2
    profile = UserProfile.objects.get(external_id="u-1")
    assert (profile.event_count, profile.purchase_count) == (2, 1)


def test_event_id_repeated_inside_one_batch_is_stored_once(api):
    response = post(api, [event(1), event(1, event_type="click")])
    assert response.json() == {"accepted": 1, "duplicates": 1, "rejected": []}
    assert Event.objects.get(event_id="ev-1").event_type == "view"


def test_valid_events_are_kept_when_others_in_the_batch_fail(api):
    response = post(api, [event(1), event(2, event_type="teleport"), event(3)])
    assert response.status_code == 200
    body = response.json()
    assert body["accepted"] == 2
    assert len(body["rejected"]) == 1
    rejected = body["rejected"][0]
    assert rejected["index"] == 1
    assert rejected["event_id"] == "ev-2"
    assert "event_type" in rejected["errors"]
    assert sorted(Event.objects.values_list("event_id", flat=True)) == ["ev-1", "ev-3"]


@pytest.mark.parametrize(
    ("bad", "field", "reason_part"),
    [
        (event(event_type="teleport"), "event_type", "Must be one of"),
        (event(event_id=...), "event_id", "required"),
        (event(event_id=""), "event_id", "empty"),
        (event(event_id=123), "event_id", "string"),
        (event(item_id=["a"]), "item_id", "string"),
        (event(timestamp="yesterday"), "timestamp", "ISO 8601"),
        (event(timestamp=1700000000), "timestamp", "ISO 8601"),
        (event(quantity="three"), "quantity", "integer"),
        (event(quantity=True), "quantity", "boolean"),
        (event(value="NaN"), "value", "finite"),
        (event(position=-1), "position", "between"),
        (event(recommendation_id="not-a-uuid"), "recommendation_id", "UUID"),
        (event(user_id=..., session_id=...), "user_id", "session_id"),
        (event(surprise="x"), "surprise", "Unknown field"),
        (event(user_id="u" * 129), "user_id", "At most 128"),
        (event(device_type="x" * 100_000), "device_type", "At most 50"),
        (event(session_id="a\x00b"), "session_id", "NUL"),
    ],
)
def test_invalid_event_gets_400_naming_field_and_reason(api, bad, field, reason_part):
    response = post(api, [bad])
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["error"] == "invalid"
    assert body["accepted"] == 0
    [rejected] = body["rejected"]
    assert rejected["index"] == 0
    assert field in rejected["errors"], rejected
    assert any(reason_part in reason for reason in rejected["errors"][field]), rejected
    assert Event.objects.count() == 0
    assert UserProfile.objects.count() == 0


def test_timestamp_far_in_the_future_is_rejected_but_small_clock_skew_is_not(api):
    far = (timezone.now() + timedelta(days=2)).isoformat()
    near = (timezone.now() + timedelta(minutes=2)).isoformat()
    response = post(api, [event(1, timestamp=far), event(2, timestamp=near)])
    assert response.status_code == 200
    body = response.json()
    assert body["accepted"] == 1
    assert body["rejected"][0]["index"] == 0
    assert "future" in body["rejected"][0]["errors"]["timestamp"][0]


def test_timestamp_without_offset_is_taken_as_utc(api):
    assert post(api, [event(1, timestamp="2025-03-01T10:00:00")]).status_code == 200
    stored = Event.objects.get(event_id="ev-1").timestamp
    assert stored.utcoffset() == timedelta(0)
    assert (stored.hour, stored.minute) == (10, 0)


def test_anonymous_session_event_is_stored_without_a_profile(api):
    response = post(api, [event(1, user_id=...)])
    assert response.json()["accepted"] == 1
    assert Event.objects.get().user_id is None
    assert UserProfile.objects.count() == 0


def test_malformed_json_gets_400_naming_the_body(api):
    response = api.post(URL, data='{"events": [{"event_id": "x",', content_type="application/json")
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "parse_error"
    assert "JSON" in body["fields"]["body"][0]
    assert Event.objects.count() == 0


def test_nan_literal_in_json_is_a_parse_error(api):
    raw = '{"events": [{"event_id": "x", "value": NaN}]}'
    response = api.post(URL, data=raw, content_type="application/json")
    assert response.status_code == 400
    assert "NaN" in response.json()["detail"]


def test_body_that_is_not_an_object_gets_400(api):
    response = api.post(URL, [event(1)], format="json")
    assert response.status_code == 400
    assert "events" in response.json()["fields"]


def test_oversize_batch_gets_400_and_writes_nothing(api):
    response = post(api, [event(n) for n in range(1001)])
    assert response.status_code == 400
    body = response.json()
    assert "At most 1000" in body["fields"]["events"][0]
    assert Event.objects.count() == 0


def test_batch_of_exactly_the_cap_is_accepted(api):
    response = post(api, [event(n) for n in range(1000)])
    assert response.status_code == 200
    assert response.json()["accepted"] == 1000


def test_empty_batch_and_unknown_top_level_field_get_400(api):
    assert "events" in post(api, []).json()["fields"]
    response = api.post(URL, {"events": [event(1)], "extra": 1}, format="json")
    assert response.status_code == 400
    assert response.json()["fields"] == {"extra": ["Unknown field."]}
    assert Event.objects.count() == 0


def test_body_over_the_size_cap_gets_413_and_writes_nothing(api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    response = post(api, [event(n, session_id="s" * 100) for n in range(100)])
    assert response.status_code == 413
    assert response.json()["error"] == "too_large"
    assert Event.objects.count() == 0


def test_event_for_unknown_item_is_kept_and_linked_when_the_item_arrives(api):
    assert post(api, [event(1, item_id="later-sku")]).json()["accepted"] == 1
    stored = Event.objects.get(event_id="ev-1")
    assert stored.item_id is None
    assert stored.item_external_id == "later-sku"

    created = api.post("/api/v1/items", {"items": [{"id": "later-sku", "title": "Late"}]}, format="json")
    assert created.json()["created"] == 1
    stored.refresh_from_db()
    assert stored.item == Item.objects.get(external_id="later-sku")


def test_event_for_known_item_is_linked_at_once(api):
    item = Item.objects.create(external_id="sku-1", title="Mug")
    post(api, [event(1)])
    assert Event.objects.get().item == item


def test_events_without_api_key_are_refused(anon_api):
    response = anon_api.post(URL, {"events": [event(1)]}, format="json")
    assert response.status_code == 401
    assert Event.objects.count() == 0


def post_raw(api, events):
    """As a JavaScript client sends it: JSON with \\uXXXX escapes, so a lone surrogate can travel."""
    return api.post(URL, json.dumps({"events": events}), content_type="application/json")


@pytest.mark.parametrize("field", ["event_id", "user_id", "session_id", "item_id", "device_type", "surface"])
def test_lone_surrogate_in_any_string_field_is_rejected_and_the_valid_event_kept(api, field):
    response = post_raw(api, [event(1), event(2, **{field: "emoji cut \ud83d"})])
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["accepted"] == 1
    [rejected] = body["rejected"]
    assert rejected["index"] == 1
    assert "surrogate" in rejected["errors"][field][0]
    assert list(Event.objects.values_list("event_id", flat=True)) == ["ev-1"]


def test_lone_surrogate_in_an_unknown_field_name_is_echoed_escaped(api):
    response = post_raw(api, [event(1), {**event(2), "x\udc00": 1}])
    assert response.json()["rejected"][0]["errors"] == {"x\\udc00": ["Unknown field."]}


@pytest.mark.parametrize(
    ("timestamp", "utc"),
    [
        ("2024-01-01T00:00:00+16:00", datetime(2023, 12, 31, 8, 0, tzinfo=UTC)),
        ("2024-01-01T00:00:00-23:59", datetime(2024, 1, 1, 23, 59, tzinfo=UTC)),
        ("2024-01-01T00:00:00+14:00", datetime(2023, 12, 31, 10, 0, tzinfo=UTC)),
    ],
)
def test_timestamp_with_any_offset_python_reads_is_stored_as_the_same_instant(api, timestamp, utc):
    response = post(api, [event(1, timestamp=timestamp)])
    assert response.status_code == 200, response.content
    assert Event.objects.get(event_id="ev-1").timestamp == utc

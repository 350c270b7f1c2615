from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from catalog.models import Category, Item
from core.payloads import check_item

pytestmark = pytest.mark.django_db


def test_items_are_created_then_updated_then_unchanged(api):
    item = {"id": "sku-1", "title": "Red mug", "category_path": ["Kitchen", "Mugs"], "price": "9.90"}
    first = api.post("/api/v1/items", {"items": [item]}, format="json")
    assert first.status_code == 200, first.content
    assert first.json() == {"created": 1, "updated": 0, "unchanged": 0, "rejected": []}

    again = api.post("/api/v1/items", {"items": [item]}, format="json")
    assert again.json()["unchanged"] == 1

    changed = api.post("/api/v1/items", {"items": [{**item, "price": "12.00"}]}, format="json")
    assert changed.json()["updated"] == 1
    stored = Item.objects.get(external_id="sku-1")
    assert str(stored.price) == "12.00"
    assert stored.category.path == "Kitchen > Mugs"
    assert Category.objects.get(path="Kitchen").children.get().name == "Mugs"


def post_items(api, items):
    return api.post("/api/v1/items", {"items": items}, format="json")


def test_valid_items_are_kept_when_others_in_the_batch_fail(api):
    response = post_items(
        api, [{"id": "a", "title": "A"}, {"id": "b"}, {"id": "c", "title": "C", "price": "x"}]
    )
    assert response.status_code == 200
    body = response.json()
    assert body["created"] == 1
    assert [(r["index"], r["id"], sorted(r["errors"])) for r in body["rejected"]] == [
        (1, "b", ["title"]),
        (2, "c", ["price"]),
    ]
    assert list(Item.objects.values_list("external_id", flat=True)) == ["a"]


@pytest.mark.parametrize(
    ("item", "field", "reason_part"),
    [
        ({"title": "no id"}, "id", "required"),
        ({"id": 5, "title": "numeric id"}, "id", "string"),
        ({"id": "x", "title": "x" * 501}, "title", "At most 500"),
        ({"id": "x", "title": "t", "description": "d" * 20_001}, "description", "At most 20000"),
        ({"id": "x", "title": "t", "price": -1}, "price", "between"),
        ({"id": "x", "title": "t", "stock": 1.5}, "stock", "integer"),
        ({"id": "x", "title": "t", "in_stock": "maybe"}, "in_stock", "boolean"),
        ({"id": "x", "title": "t", "currency": "euro"}, "currency", "ISO 4217"),
        ({"id": "x", "title": "t", "image_url": "javascript:alert(1)"}, "image_url", "http"),
        ({"id": "x", "title": "t", "category_path": "A > B"}, "category_path", None),
        ({"id": "x", "title": "t", "category_path": ["A", ""]}, "category_path", "Level 2"),
        ({"id": "x", "title": "t", "category_path": ["A>B"]}, "category_path", "separates levels"),
        ({"id": "x", "title": "t", "category_path": ["n" * 200] * 6}, "category_path", "joined"),
        ({"id": "x", "title": "t", "attributes": ["not", "an", "object"]}, "attributes", "object"),
        ({"id": "x", "title": "t", "attributes": {"k": "v" * 20_000}}, "attributes", "16384 bytes"),
        ({"id": "x", "title": "t", "attributes": {"k": "a\x00b"}}, "attributes", "NUL"),
        ({"id": "x", "title": "t", "published_at": "soon"}, "published_at", "ISO 8601"),
        ({"id": "x", "title": "t", "colour": "red"}, "colour", "Unknown field"),
    ],
)
def test_invalid_item_gets_400_naming_field_and_reason(api, item, field, reason_part):
    response = post_items(api, [item])
    if field == "category_path" and reason_part is None:
        # the API takes a list; "A > B" is the CSV spelling and is accepted as such
        assert response.status_code == 200
        assert Item.objects.get().category_path == ["A", "B"]
        return
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["error"] == "invalid"
    [rejected] = body["rejected"]
    assert field in rejected["errors"], rejected
    assert any(reason_part in reason for reason in rejected["errors"][field]), rejected
    assert Item.objects.count() == 0


def test_oversize_item_batch_gets_400_and_writes_nothing(api):
    response = post_items(api, [{"id": f"i{n}", "title": "t"} for n in range(1001)])
    assert response.status_code == 400
    assert "At most 1000" in response.json()["fields"]["items"][0]
    assert Item.objects.count() == 0


def test_same_id_twice_in_a_batch_keeps_the_last(api):
    response = post_items(api, [{"id": "a", "title": "first"}, {"id": "a", "title": "second"}])
    assert response.json()["created"] == 1
    assert Item.objects.get().title == "second"


def test_get_item_and_404_with_the_error_shape(api):
    post_items(api, [{"id": "sku/with/slash", "title": "Slashed", "attributes": {"size": "M"}}])
    response = api.get("/api/v1/items/sku/with/slash")
    assert response.status_code == 200
    assert response.json()["id"] == "sku/with/slash"
    assert response.json()["attributes"] == {"size": "M"}
    missing = api.get("/api/v1/items/nope")
    assert missing.status_code == 404
    assert missing.json()["error"] == "not_found"


def test_patch_changes_given_fields_and_derives_in_stock_from_stock(api):
    post_items(api, [{"id": "a", "title": "Lamp", "price": "10.00", "brand": "Lux"}])
    response = api.patch("/api/v1/items/a", {"stock": 0, "price": "8.50"}, format="json")
    assert response.status_code == 200, response.content
    item = Item.objects.get()
    assert (item.stock, item.in_stock, str(item.price), item.brand) == (0, False, "8.50", "Lux")


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        ({"id": "b"}, "id", "Cannot be changed: it is the item's key."),
        ({"is_active": False}, "is_active", "Read-only."),
        ({"created_at": "2020-01-01T00:00:00Z"}, "created_at", "Read-only."),
        ({"embedding": [0.1] * 384}, "embedding", "Unknown field."),
        ({"content_hash": "x"}, "content_hash", "Unknown field."),
        ({"title": ""}, "title", "Must not be empty."),
    ],
)
def test_patch_cannot_mass_assign(api, body, field, reason):
    post_items(api, [{"id": "a", "title": "Lamp"}])
    before = Item.objects.values().get()
    response = api.patch("/api/v1/items/a", {**body, "brand": "Sneaky"}, format="json")
    assert response.status_code == 400
    assert response.json()["fields"][field] == [reason]
    assert Item.objects.values().get() == before  # nothing partial: not even the valid brand


def test_patch_unknown_item_is_404(api):
    assert api.patch("/api/v1/items/nope", {"price": "1"}, format="json").status_code == 404


def test_delete_deactivates_and_keeps_history_and_reposting_reactivates(api):
    from interactions.models import Event

    post_items(api, [{"id": "a", "title": "Lamp"}])
    api.post(
        "/api/v1/events",
        {"events": [{"event_id": "e1", "user_id": "u", "item_id": "a", "event_type": "view",
                     "timestamp": "2025-01-01T00:00:00Z"}]},
        format="json",
    )  # fmt: skip
    assert api.delete("/api/v1/items/a").status_code == 204
    item = Item.objects.get()
    assert item.is_active is False
    assert api.get("/api/v1/items/a").json()["is_active"] is False
    assert Event.objects.get().item == item  # history stays
    assert api.delete("/api/v1/items/a").status_code == 204  # idempotent
    assert post_items(api, [{"id": "a", "title": "Lamp"}]).json()["updated"] == 1
    item.refresh_from_db()
    assert item.is_active is True


def test_items_api_requires_a_key(anon_api):
    assert (
        anon_api.post("/api/v1/items", {"items": [{"id": "a", "title": "A"}]}, format="json").status_code
        == 401
    )
    assert Item.objects.count() == 0


def nested(depth: int) -> dict:
    value: dict = {"leaf": 1}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def post_raw(api, body: dict):
    """As a JavaScript client sends it: JSON with \\uXXXX escapes, so a lone surrogate can travel."""
    return api.post("/api/v1/items", json.dumps(body), content_type="application/json")


@pytest.mark.parametrize(
    ("bad", "field", "reason_part"),
    [
        ({"id": "bad", "title": "emoji cut \ud83d"}, "title", "surrogate"),
        ({"id": "bad\ud83d", "title": "t"}, "id", "surrogate"),
        ({"id": "bad", "title": "t", "category_path": ["Mugs \udc00"]}, "category_path", "surrogate"),
        ({"id": "bad", "title": "t", "attributes": {"colour\ud83d": "red"}}, "attributes", "surrogate"),
        ({"id": "bad", "title": "t", "attributes": {"colour": ["red \ud83d"]}}, "attributes", "surrogate"),
        ({"id": "bad", "title": "t", "brand\ud83d": "x"}, "brand\\ud83d", "Unknown field"),
        ({"id": "bad", "title": "t", "attributes": nested(400)}, "attributes", "32 levels"),
        ({"id": "bad", "title": "t", "attributes": nested(33)}, "attributes", "32 levels"),
        ({"id": "bad", "title": "t", "published_at": "9999-12-31"}, "published_at", "future"),
        ({"id": "bad", "title": "t", "published_at": "9999-12-31T23:00:00-05:00"}, "published_at", "range"),
    ],
)
def test_unstorable_item_is_rejected_by_field_and_the_valid_item_beside_it_is_kept(
    api, bad, field, reason_part
):
    response = post_raw(api, {"items": [{"id": "good", "title": "Good"}, bad]})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["created"] == 1
    [rejected] = body["rejected"]
    assert rejected["index"] == 1
    assert field in rejected["errors"], rejected
    assert any(reason_part in reason for reason in rejected["errors"][field]), rejected
    assert list(Item.objects.values_list("external_id", flat=True)) == ["good"]


def test_attributes_nested_32_deep_are_kept():
    clean, errors = check_item({"id": "x", "title": "t", "attributes": nested(32)})
    assert errors == {} and clean["attributes"] == nested(32)


def test_published_at_with_an_offset_postgres_refuses_is_stored_as_the_same_instant_in_utc(api):
    items = [
        {"id": "east", "title": "t", "published_at": "2024-01-01T00:00:00+16:00"},
        {"id": "west", "title": "t", "published_at": "2024-01-01T00:00:00-23:59"},
    ]
    response = post_items(api, items)
    assert response.status_code == 200, response.content
    assert response.json()["created"] == 2
    east = Item.objects.get(external_id="east").published_at
    assert east == datetime(2023, 12, 31, 8, 0, tzinfo=UTC)
    assert Item.objects.get(external_id="west").published_at == datetime(2024, 1, 1, 23, 59, tzinfo=UTC)


def test_published_at_a_little_ahead_is_kept_as_clock_skew(api):
    soon = (timezone.now() + timedelta(minutes=5)).isoformat()
    response = post_items(api, [{"id": "soon", "title": "t", "published_at": soon}])
    assert response.json()["created"] == 1

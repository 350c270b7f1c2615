from __future__ import annotations

import pytest

from catalog.models import Category, Item

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

"""Editing an item in the admin queues its embedding like the API does (catalog/admin.py)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from catalog.models import Item
from catalog.tasks import items_embed_task

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def staff_client(client):
    user = User.objects.create_superuser("admin", "admin@example.com", "pw-for-tests-only")
    client.force_login(user)
    return client


def test_changing_the_title_in_admin_marks_the_item_dirty_and_queues_it(staff_client, monkeypatch):
    queued = []
    monkeypatch.setattr(items_embed_task, "apply_async", lambda args, retry: queued.append(args))
    item = Item.objects.create(external_id="a", title="Lamp", embedding_dirty=False)
    item.content_hash = item.compute_content_hash()
    item.save()
    form = {
        "external_id": "a",
        "title": "Desk lamp",
        "description": "",
        "category_path": "",
        "currency": "",
        "brand": "",
        "location": "",
        "condition": "",
        "image_url": "",
        "attributes": "{}",
        "in_stock": "on",
        "is_active": "on",
    }
    response = staff_client.post(f"/admin/catalog/item/{item.pk}/change/", form)
    assert response.status_code == 302, response.content[:2000]
    item.refresh_from_db()
    assert item.title == "Desk lamp" and item.embedding_dirty
    assert item.content_hash == item.compute_content_hash()
    assert queued == [[[item.pk]]]

"""Privacy: erasing a user leaves no trace in any table that holds a user id, nor in the cache.

The tables are found by introspection (every concrete column of the project's models whose name says it
holds a user id), so a new table with a user column fails this test until its rows are both seeded here
and erased by `user_erase` (through the `user_erasure` signal)."""

from __future__ import annotations

import re

import pytest
from django.apps import apps
from django.conf import settings
from django.db import models

from analytics.attribution import events_attribute_recent
from analytics.models import Attribution
from interactions.models import Event, UserProfile
from interactions.user_vectors import user_vectors_apply
from tests.recommendations.factories import ItemFactory, topic

pytestmark = pytest.mark.django_db

PROJECT_APPS = {
    "catalog",
    "interactions",
    "recommendations",
    "analytics",
    "accelerator",
    "core",
    "storefront",
}
USER_COLUMN = re.compile(r"(^|_)(user|customer|visitor|shopper|person)(_id|_ids|_external_id)?$")
USER = "erase-me@example.com"
OTHER = "keep-me"


def user_columns() -> list[tuple[type[models.Model], str]]:
    """(model, field name) of every column of the project's models that holds a shop's user id."""
    found = []
    for model in apps.get_models():
        if model._meta.app_label not in PROJECT_APPS:
            continue
        for field in model._meta.concrete_fields:
            if not isinstance(field, models.CharField | models.TextField):
                continue
            if USER_COLUMN.search(field.name) or (model is UserProfile and field.name == "external_id"):
                found.append((model, field.name))
    return found


def seed_user(api, user: str) -> str:
    """Events (view, then a click on a served list), a vector, a served list and an attribution."""
    events = [
        {"event_id": f"{user}-v{i}", "user_id": user, "session_id": f"s-{user}", "item_id": f"sku-{i}",
         "event_type": "view", "timestamp": "2026-01-01T00:00:00Z"}
        for i in range(3)
    ]  # fmt: skip
    assert api.post("/api/v1/events", {"events": events}, format="json").status_code == 200
    served = api.get(f"/api/v1/recommendations/users/{user}")
    assert served.status_code == 200, served.content
    rec_id = served.json()["recommendation_id"]
    click = {"event_id": f"{user}-c", "user_id": user, "session_id": f"s-{user}", "item_id": "sku-4",
             "event_type": "click", "timestamp": "2026-01-01T00:01:00Z", "recommendation_id": rec_id}  # fmt: skip
    assert api.post("/api/v1/events", {"events": [click]}, format="json").status_code == 200
    return rec_id


def test_the_introspection_finds_the_known_user_columns():
    found = {(m._meta.label, f) for m, f in user_columns()}
    assert {
        ("interactions.Event", "user_id"),
        ("interactions.UserProfile", "external_id"),
        ("recommendations.ServedList", "user_id"),
    } <= found


def test_erasure_leaves_no_row_with_the_user_id_in_any_table_nor_in_the_cache(api):
    from django.core.cache import cache

    for i in range(6):
        ItemFactory(external_id=f"sku-{i}", embedding=topic(i % 3))
    rec_id = seed_user(api, USER)
    seed_user(api, OTHER)
    user_vectors_apply()
    events_attribute_recent()
    cache.set(f"probe:{USER}", "x", 60)  # what a cache trace would look like, to prove the scan sees it
    assert UserProfile.objects.get(external_id=USER).embedding is not None
    assert Attribution.objects.filter(recommendation_id=rec_id).exists()
    for model, field in user_columns():
        assert model.objects.filter(**{field: USER}).exists(), (
            f"{model._meta.label}.{field} holds user ids but this test seeds no row there: extend seed_user"
        )
    cache.delete(f"probe:{USER}")

    response = api.delete(f"/api/v1/users/{USER}")

    assert response.status_code == 200
    for model, field in user_columns():
        assert not model.objects.filter(**{field: USER}).exists(), (
            f"{model._meta.label}.{field} kept the user"
        )
        assert model.objects.filter(**{field: OTHER}).exists(), (
            f"{model._meta.label}.{field} lost another user"
        )
    assert not Attribution.objects.filter(recommendation_id=rec_id).exists()
    assert not Event.objects.filter(session_id=f"s-{USER}").exists()
    redis = cache._cache.get_client(write=False)
    traces = [key for key in redis.scan_iter(count=500) if USER.encode() in key]
    for key in redis.scan_iter(count=500):
        if redis.type(key) == b"string" and USER.encode() in (redis.get(key) or b""):
            traces.append(key)
    assert traces == [], f"cache keys still naming the user in {settings.REDIS_URL}: {traces[:5]}"

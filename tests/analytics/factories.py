"""Factories for analytics tests: items, events and served lists."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import factory
from django.conf import settings

from catalog.models import Item
from interactions.models import Event
from recommendations.models import ServedList

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


class ItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Item

    external_id = factory.Sequence(lambda n: f"sku-{n}")
    title = factory.Sequence(lambda n: f"Item {n}")
    price = 10
    embedding_model = settings.RECSYS_EMBEDDING_MODEL
    embedding_dirty = False


class EventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Event

    event_id = factory.Sequence(lambda n: f"ev-{n}")
    user_id = "u1"
    session_id = "s1"
    item = factory.SubFactory(ItemFactory)
    item_external_id = factory.LazyAttribute(lambda o: o.item.external_id if o.item else "unknown")
    event_type = "view"
    timestamp = T0


class ServedListFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ServedList

    recommendation_id = factory.LazyFunction(uuid.uuid4)
    user_id = "u1"
    surface = "home"
    scenario = "user"
    item_pks = factory.LazyFunction(list)
    item_ids = factory.LazyFunction(list)


def served_list(items: list[Item], *, created_at: datetime | None = None, **kwargs) -> ServedList:
    """A served list of these items; `created_at` overrides auto_now_add."""
    served = ServedListFactory(
        item_pks=[i.pk for i in items], item_ids=[i.external_id for i in items], **kwargs
    )
    if created_at is not None:
        ServedList.objects.filter(pk=served.pk).update(created_at=created_at)
        served.refresh_from_db()
    return served


def unit(*values: float) -> list[float]:
    """A 384-d vector with these leading values (the rest zero)."""
    vec = [0.0] * settings.EMBEDDING_DIM
    vec[: len(values)] = values
    return vec

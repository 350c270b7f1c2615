"""The test factories, defined once for every test package: items (with vectors written directly, no model
run), events, user profiles and served lists, and the vector helpers they use.

Vectors are built from a few orthogonal "topic" directions plus a small private component, so that the
nearest neighbours of a vector are known in advance. The analytics tests used to have their own item and
event factories with other defaults (no vector, no category, no `published_at`; events in session "s1" at
`T0`); they now pass those values at each call."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import factory
import numpy as np
from django.conf import settings
from django.utils import timezone

from catalog.embedding import current_model_name
from catalog.models import Item
from interactions.models import Event, UserProfile
from recommendations.models import ServedList

DIM = settings.EMBEDDING_DIM

# A fixed moment for tests that build a timeline by hand (attribution windows, daily rollups).
T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def unit(vector: np.ndarray) -> np.ndarray:
    return (vector / np.linalg.norm(vector)).astype(np.float32)


def topic(index: int, *, jitter: float = 0.0, seed: int = 0) -> np.ndarray:
    """A unit vector close to axis `index`; `jitter` (0..1) moves it away in a seeded random direction."""
    vector = np.zeros(DIM, dtype=np.float32)
    vector[index] = 1.0
    if jitter:
        noise = np.random.default_rng(seed).normal(size=DIM).astype(np.float32)
        noise[index] = 0
        vector = vector + jitter * unit(noise)
    return unit(vector)


def blend(*parts: tuple[int, float]) -> np.ndarray:
    vector = np.zeros(DIM, dtype=np.float32)
    for index, weight in parts:
        vector[index] = weight
    return unit(vector)


def leading(*values: float) -> list[float]:
    """A 384-d vector with these leading values (the rest zero), not normalised."""
    vec = [0.0] * DIM
    vec[: len(values)] = values
    return vec


class ItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Item

    external_id = factory.Sequence(lambda n: f"sku-{n}")
    title = factory.Sequence(lambda n: f"Item {n}")
    price = 10
    category_path = factory.LazyFunction(lambda: ["Home"])
    embedding = factory.LazyFunction(lambda: topic(0))
    embedding_model = factory.LazyFunction(current_model_name)
    embedding_dirty = False
    # old enough that freshness and exploration leave it alone unless a test says otherwise
    published_at = factory.LazyFunction(lambda: timezone.now() - timedelta(days=365))


class EventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Event

    event_id = factory.Sequence(lambda n: f"ev-{n}")
    user_id = "u1"
    session_id = ""
    item = factory.SubFactory(ItemFactory)
    item_external_id = factory.LazyAttribute(lambda o: o.item.external_id if o.item else "unknown")
    event_type = "view"
    timestamp = factory.LazyFunction(timezone.now)


class UserProfileFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = UserProfile

    external_id = factory.Sequence(lambda n: f"user-{n}")
    embedding = factory.LazyFunction(lambda: topic(0))
    embedding_model = factory.LazyFunction(current_model_name)


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

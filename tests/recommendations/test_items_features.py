"""`selectors.items_features`: the candidates' features as columns, read in one query in binary."""

from datetime import timedelta
from decimal import Decimal

import numpy as np
import pytest
from django.utils import timezone

from catalog.models import Item
from recommendations.models import ItemPopularity
from recommendations.rerank.candidates import time_us
from recommendations.retrieval.base import HardFilters
from recommendations.selectors import items_features
from tests.factories import ItemFactory, topic

pytestmark = pytest.mark.django_db


def _columns(features, pk):
    c = features.candidates
    i = int(np.flatnonzero(c.pk == pk)[0])
    return c.row(i)


def test_each_column_holds_its_candidates_fresh_row():
    published = timezone.now() - timedelta(days=3)
    phone = ItemFactory(
        category_path=["Electronics", "Phones"],
        brand="Acme",
        stock=2,
        price=Decimal("9.99"),
        published_at=published,
        embedding=topic(1),
    )
    plain = ItemFactory(
        category_path=[], brand="", stock=None, price=None, published_at=None, embedding=topic(2)
    )
    ItemPopularity.objects.create(item=phone, score=1.0, interaction_count=7)

    features = items_features(
        scores={phone.pk: 0.8, plain.pk: 0.3}, filters=HardFilters(), with_vector=[phone.pk]
    )

    assert sorted(features.candidates.pk.tolist()) == sorted([phone.pk, plain.pk])
    row = _columns(features, phone.pk)
    assert (row.score, row.category_path, row.brand, row.stock, row.interaction_count) == (
        0.8,
        ("Electronics", "Phones"),
        "Acme",
        2,
        7,
    )
    assert row.available and time_us(row.published_at) == time_us(published)
    np.testing.assert_allclose(row.vector, topic(1), atol=1e-6)
    other = _columns(features, plain.pk)
    created = Item.objects.get(pk=plain.pk).created_at
    assert other.vector is None  # not asked for: compared as dissimilar
    assert (other.category_path, other.stock, other.interaction_count) == ((), 0, 0)
    assert time_us(other.published_at) == time_us(created)  # no publication date: when the catalog saw it
    assert features.card(phone.pk, row.category_path) == (
        phone.external_id,
        phone.title,
        Decimal("9.99"),
        phone.image_url,
        ("Electronics", "Phones"),
    )
    assert features.card(plain.pk, ()).price is None


def test_hard_filters_are_checked_on_the_fresh_rows():
    kept = ItemFactory(category_path=["Home", "Kitchen"], price=20)
    sold_out = ItemFactory(category_path=["Home", "Kitchen"], price=20, stock=0)
    inactive = ItemFactory(category_path=["Home", "Kitchen"], price=20, is_active=False)
    elsewhere = ItemFactory(category_path=["Garden"], price=20)
    dear = ItemFactory(category_path=["Home", "Kitchen"], price=500)
    excluded = ItemFactory(category_path=["Home", "Kitchen"], price=20)
    scores = {item.pk: 0.5 for item in (kept, sold_out, inactive, elsewhere, dear, excluded)}
    filters = HardFilters(
        category_prefix=("Home",), max_price=Decimal("100"), exclude_item_pks=frozenset({excluded.pk})
    )

    in_stock = items_features(scores=scores, filters=filters)
    any_stock = items_features(scores=scores, filters=HardFilters(in_stock_only=False))

    assert in_stock.candidates.pk.tolist() == [kept.pk]
    assert set(any_stock.candidates.pk.tolist()) == set(scores)
    unavailable = any_stock.candidates.pk[~any_stock.candidates.available]
    assert set(unavailable.tolist()) == {sold_out.pk, inactive.pk}


def test_extra_items_give_their_vectors_even_when_they_are_not_candidates():
    candidate = ItemFactory(embedding=topic(0))
    history = ItemFactory(embedding=topic(3), stock=0)  # out of stock: still explains
    no_vector = ItemFactory(embedding=None, embedding_model="")

    features = items_features(
        scores={candidate.pk: 0.9}, filters=HardFilters(), extra_pks=[history.pk, no_vector.pk]
    )

    assert features.candidates.pk.tolist() == [candidate.pk]
    assert set(features.extra) == {history.pk}
    external_id, vector = features.extra[history.pk]
    assert external_id == history.external_id
    np.testing.assert_allclose(vector, topic(3), atol=1e-6)


def test_nothing_asked_reads_nothing():
    features = items_features(scores={}, filters=HardFilters())
    assert len(features.candidates) == 0 and features.cards == {} and features.extra == {}

"""The pgvector backend against the real Postgres + pgvector (HNSW index from catalog's migrations)."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from catalog.embedding import current_model_name
from catalog.models import Item
from recommendations import retrieval
from recommendations.retrieval import HardFilters, get_backend
from recommendations.retrieval import pgvector_backend as pgv
from tests.factories import ItemFactory, blend, topic

pytestmark = pytest.mark.django_db


def _search(vector, k=10, **filters):
    return get_backend().search(vector=vector, k=k, filters=HardFilters(**filters))


def test_nearest_items_come_first_with_their_cosine_distance():
    near = ItemFactory(embedding=blend((0, 1.0), (1, 0.1)))
    far = ItemFactory(embedding=blend((0, 1.0), (1, 1.0)))
    other = ItemFactory(embedding=topic(2))
    found = _search(topic(0))
    assert [c.item_pk for c in found] == [near.pk, far.pk, other.pk]
    assert found[0].distance == pytest.approx(1 - 1 / np.sqrt(1.01), abs=1e-4)
    assert found[2].distance == pytest.approx(1.0, abs=1e-4)


def test_every_hard_filter_is_applied_inside_the_query():
    keep = ItemFactory(category_path=["Electronics", "Phones"], price=Decimal("100"))
    ItemFactory(is_active=False, category_path=["Electronics", "Phones"], price=100)
    ItemFactory(in_stock=False, category_path=["Electronics", "Phones"], price=100)
    ItemFactory(stock=0, category_path=["Electronics", "Phones"], price=100)
    ItemFactory(category_path=["Electronics", "Laptops"], price=100)
    ItemFactory(category_path=["Toys", "Electronics", "Phones"], price=100)  # the names, not as a prefix
    ItemFactory(category_path=["Electronics", "Phones"], price=Decimal("500"))
    ItemFactory(category_path=["Electronics", "Phones"], price=Decimal("5"))
    ItemFactory(category_path=["Electronics", "Phones"], price=100, embedding=None)
    ItemFactory(category_path=["Electronics", "Phones"], price=100, embedding_model="some-older-model")
    excluded = ItemFactory(category_path=["Electronics", "Phones"], price=100)
    found = _search(
        topic(0),
        category_prefix=("Electronics", "Phones"),
        min_price=Decimal("50"),
        max_price=Decimal("200"),
        exclude_item_pks=frozenset({excluded.pk}),
    )
    assert [c.item_pk for c in found] == [keep.pk]


def test_out_of_stock_items_are_found_when_the_profile_allows_them():
    sold_out = ItemFactory(in_stock=False)
    assert [c.item_pk for c in _search(topic(0), in_stock_only=False)] == [sold_out.pk]
    assert _search(topic(0)) == []


def test_empty_catalog_gives_no_candidates():
    assert _search(topic(0), category_prefix=("Anything",)) == []


def _catalog_with_rare_category(n: int = 2000, rare_every: int = 100) -> list[int]:
    """n items near axis 0; every `rare_every`-th one is in category Rare and further from axis 0, so an
    unfiltered nearest-neighbour scan meets only common items first. Returns the rare items' pks."""
    rng = np.random.default_rng(7)
    items = []
    for i in range(n):
        rare = i % rare_every == 0
        vector = topic(0) + rng.normal(scale=0.02, size=topic(0).shape).astype(np.float32)
        if rare:
            vector = vector + topic(1)
        items.append(
            Item(
                external_id=f"bulk-{i}",
                title=f"Bulk {i}",
                category_path=["Rare"] if rare else ["Common"],
                embedding=(vector / np.linalg.norm(vector)).astype(np.float32),
                embedding_model=current_model_name(),
                embedding_dirty=False,
            )
        )
    Item.objects.bulk_create(items, batch_size=500)
    with connection.cursor() as cur:
        cur.execute("ANALYZE catalog_item")
    return list(Item.objects.filter(category_path=["Rare"]).values_list("pk", flat=True))


def test_one_percent_selective_filter_returns_the_full_limit_through_the_hnsw_index(monkeypatch):
    rare = _catalog_with_rare_category()
    monkeypatch.setattr(pgv, "EXACT_MAX_ROWS", 0)  # force the ANN plan: the iterative scan must not starve
    with connection.cursor() as cur:  # and leave the planner no other way than the HNSW index
        cur.execute("SET LOCAL enable_seqscan = off")
        cur.execute("SET LOCAL enable_bitmapscan = off")
        cur.execute("EXPLAIN " + _ann_sql())
        assert "item_embedding_hnsw" in " ".join(row[0] for row in cur.fetchall())
    with CaptureQueriesContext(connection) as queries:
        found = _search(topic(0), k=20, category_prefix=("Rare",))
    assert sorted(c.item_pk for c in found) == sorted(rare)
    assert any("hnsw.iterative_scan" in q["sql"] for q in queries.captured_queries)
    assert not any("enable_indexscan" in q["sql"] for q in queries.captured_queries)


def _ann_sql() -> str:
    where, params = pgv.filters_where(HardFilters(category_prefix=("Rare",)))
    params.update(q=pgv.vector_literal(topic(0)), k=20)
    sql = f"SELECT i.id FROM catalog_item i WHERE {where} ORDER BY i.embedding <=> %(q)s::vector LIMIT %(k)s"
    with connection.cursor() as cur:
        return cur.mogrify(sql, params)


def test_without_iterative_scans_the_same_filter_would_starve():
    """The control for the test above: proves that the catalog is built so that a plain HNSW scan returns
    (almost) nothing under this filter, i.e. that the iterative scan is what fills the list."""
    _catalog_with_rare_category()
    where, params = pgv.filters_where(HardFilters(category_prefix=("Rare",)))
    params.update(q=pgv.vector_literal(topic(0)), k=20)
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SET LOCAL hnsw.iterative_scan = off")
        cur.execute("SET LOCAL hnsw.ef_search = 40")
        cur.execute("SET LOCAL enable_seqscan = off")
        cur.execute("SET LOCAL enable_bitmapscan = off")
        cur.execute(
            f"SELECT i.id FROM catalog_item i WHERE {where} ORDER BY i.embedding <=> %(q)s::vector LIMIT %(k)s",
            params,
        )
        assert len(cur.fetchall()) < 20


def test_selective_filter_switches_to_an_exact_scan():
    rare = _catalog_with_rare_category()
    with CaptureQueriesContext(connection) as queries:
        found = _search(topic(0), k=20, category_prefix=("Rare",))
    assert sorted(c.item_pk for c in found) == sorted(rare)
    sql = " ".join(q["sql"] for q in queries.captured_queries)
    assert "EXPLAIN" in sql and "enable_indexscan" in sql


def test_unfiltered_query_uses_the_index_without_an_estimate():
    _catalog_with_rare_category(n=300)
    with CaptureQueriesContext(connection) as queries:
        found = _search(topic(0), k=50)
    assert len(found) == 50
    distances = [c.distance for c in found]
    assert distances == sorted(distances)
    sql = " ".join(q["sql"] for q in queries.captured_queries)
    assert "EXPLAIN" not in sql and "hnsw.iterative_scan" in sql


def test_backend_is_chosen_by_setting_and_unknown_names_are_refused(settings):
    retrieval._backend.cache_clear()
    settings.RECSYS_VECTOR_BACKEND = "pgvector"
    assert isinstance(get_backend(), pgv.PgvectorBackend)
    assert get_backend() is get_backend()
    settings.RECSYS_VECTOR_BACKEND = "annoy"
    with pytest.raises(ImproperlyConfigured, match="annoy"):
        get_backend()
    retrieval._backend.cache_clear()

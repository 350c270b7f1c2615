"""Hard filters in the FAISS search (accelerator/search.py): every filter applied, selective ones never starve
the list, on both the exact and the HNSW index."""

from __future__ import annotations

from decimal import Decimal

import pytest

from accelerator import search
from accelerator.backend import FaissBackend
from accelerator.services import faiss_index_build
from catalog.models import Item
from recommendations.retrieval.base import HardFilters
from tests.accelerator.conftest import RARE, clustered_vectors, exact_reference, items_create

pytestmark = pytest.mark.django_db

N = 3000


def _pks(hits):
    return [c.item_pk for c in hits]


@pytest.fixture(params=["flat", "hnsw"])
def backend(request, faiss_settings, monkeypatch):
    if request.param == "hnsw":
        request.getfixturevalue("hnsw")
    items_create(N)
    faiss_index_build()
    b = FaissBackend()
    assert b.live().manifest.index_type == request.param
    return b


def test_a_one_percent_category_returns_the_full_k_and_the_exact_answer(backend):
    assert Item.objects.filter(category_path=list(RARE)).count() == N // 100
    for q in clustered_vectors(5, seed=11):
        hits = backend.search(vector=q, k=20, filters=HardFilters(category_prefix=RARE))
        assert _pks(hits) == [
            pk for pk, _ in exact_reference(q, 20, where="category_path = %s", params=[list(RARE)])
        ]


def test_the_graph_search_with_a_selective_filter_falls_back_to_exact_instead_of_starving(
    backend, monkeypatch
):
    monkeypatch.setattr(search, "EXACT_MAX_ALLOWED", 0)
    monkeypatch.setattr(search, "EXACT_FRACTION", 0.0)
    monkeypatch.setattr(search, "EF_SEARCH_MAX", 16)  # too small to find 25 of 30 rare items in the graph
    for q in clustered_vectors(3, seed=12):
        hits = backend.search(vector=q, k=25, filters=HardFilters(category_prefix=RARE))
        assert len(hits) == 25
        assert _pks(hits) == [
            pk for pk, _ in exact_reference(q, 25, where="category_path = %s", params=[list(RARE)])
        ]


def test_category_prefix_matches_whole_names_from_the_root(backend):
    q = clustered_vectors(1, seed=13)[0]
    hits = backend.search(vector=q, k=50, filters=HardFilters(category_prefix=("Electronics", "Phones")))
    paths = dict(Item.objects.filter(pk__in=_pks(hits)).values_list("pk", "category_path"))
    assert len(hits) == 50 and all(paths[pk][:2] == ["Electronics", "Phones"] for pk in _pks(hits))
    assert backend.search(vector=q, k=5, filters=HardFilters(category_prefix=("Electro",))) == []
    assert backend.search(vector=q, k=5, filters=HardFilters(category_prefix=("Phones",))) == []


def test_price_range_is_inclusive_and_excludes_items_without_a_price(backend):
    unpriced = Item.objects.order_by("pk").first()
    Item.objects.filter(pk=unpriced.pk).update(price=None)
    faiss_index_build()
    q = clustered_vectors(1, seed=14)[0]
    f = HardFilters(min_price=Decimal("10.00"), max_price=Decimal("12"))
    hits = backend.search(vector=q, k=30, filters=f)
    prices = dict(Item.objects.filter(pk__in=_pks(hits)).values_list("pk", "price"))
    assert len(hits) == 30 and all(Decimal(10) <= prices[pk] <= Decimal(12) for pk in prices)
    assert _pks(hits) == [pk for pk, _ in exact_reference(q, 30, where="price BETWEEN 10 AND 12")]
    assert unpriced.pk not in _pks(
        backend.search(vector=q, k=N, filters=HardFilters(max_price=Decimal(1000)))
    )


def test_excluded_and_out_of_stock_items_never_come_back(backend):
    q = clustered_vectors(1, seed=15)[0]
    top = _pks(backend.search(vector=q, k=10, filters=HardFilters()))
    hits = backend.search(vector=q, k=10, filters=HardFilters(exclude_item_pks=frozenset(top[:5])))
    assert not set(top[:5]) & set(_pks(hits)) and len(hits) == 10
    everything = _pks(backend.search(vector=q, k=N, filters=HardFilters()))
    unavailable = set(Item.objects.filter(in_stock=False).values_list("pk", flat=True)) | set(
        Item.objects.filter(stock=0).values_list("pk", flat=True)
    )
    assert unavailable and not unavailable & set(everything)
    with_stockless = _pks(backend.search(vector=q, k=N, filters=HardFilters(in_stock_only=False)))
    assert unavailable <= set(with_stockless) and len(with_stockless) == N


def test_results_are_nearest_first_with_cosine_distances(backend):
    q = clustered_vectors(1, seed=16)[0]
    hits = backend.search(vector=q, k=40, filters=HardFilters())
    reference = exact_reference(q, 40)
    assert [h.distance for h in hits] == sorted(h.distance for h in hits)
    for hit, (_pk, d) in zip(hits, reference, strict=True):
        assert hit.distance == pytest.approx(d, abs=1e-5)

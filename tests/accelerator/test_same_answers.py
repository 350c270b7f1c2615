"""The same queries through pgvector and FAISS on the same catalog: identical top-k for the exact index,
overlap of at least HNSW_MIN_OVERLAP for HNSW. And switching the setting switches the backend."""

from __future__ import annotations

import importlib.util
from decimal import Decimal

import pytest

from accelerator.services import faiss_index_build
from recommendations.retrieval.base import HardFilters
from tests.accelerator.conftest import RARE, clustered_vectors, exact_reference, items_create

pytestmark = pytest.mark.django_db

# HNSW is approximate: top-k may differ from pgvector's in a few places. On this 3,000-item clustered
# catalog the measured overlap is 1.0; bench/faiss_bench.py measures recall at 100k and 1M.
HNSW_MIN_OVERLAP = 0.95
FILTERS = [
    HardFilters(),
    HardFilters(category_prefix=RARE),
    HardFilters(category_prefix=("Electronics",), min_price=Decimal(20), max_price=Decimal(150)),
    HardFilters(in_stock_only=False),
]


def _pgvector():
    if importlib.util.find_spec("recommendations.retrieval.pgvector_backend") is None:
        pytest.skip("recommendations.retrieval.pgvector_backend is not there yet")
    from recommendations.retrieval.pgvector_backend import PgvectorBackend

    return PgvectorBackend()


@pytest.fixture
def catalog(faiss_settings):
    items_create(3000)


def _answers(backend, queries, k):
    return [[c.item_pk for c in backend.search(vector=q, k=k, filters=f)] for q in queries for f in FILTERS]


def test_exact_index_gives_pgvectors_top_k(catalog):
    from accelerator.backend import FaissBackend

    faiss_index_build()
    faiss = FaissBackend()
    assert faiss.live().manifest.index_type == "flat"
    queries = clustered_vectors(10, seed=31)
    for q in queries:
        assert [c.item_pk for c in faiss.search(vector=q, k=50, filters=HardFilters())] == [
            pk for pk, _ in exact_reference(q, 50)
        ]
    assert _answers(faiss, queries, 20) == _answers(_pgvector(), queries, 20)


def test_hnsw_overlaps_pgvector_above_the_stated_threshold(catalog, hnsw):
    from accelerator.backend import FaissBackend

    faiss_index_build()
    faiss = FaissBackend()
    assert faiss.live().manifest.index_type == "hnsw"
    queries = clustered_vectors(10, seed=32)
    ours, theirs = _answers(faiss, queries, 50), _answers(_pgvector(), queries, 50)
    overlaps = [len(set(a) & set(b)) / max(len(b), 1) for a, b in zip(ours, theirs, strict=True)]
    assert all(len(a) == len(b) for a, b in zip(ours, theirs, strict=True))
    assert min(overlaps) >= HNSW_MIN_OVERLAP


def test_switching_the_setting_switches_the_backend(catalog, settings):
    from recommendations.retrieval import _backend, get_backend

    _backend.cache_clear()
    try:
        settings.RECSYS_VECTOR_BACKEND = "pgvector"
        assert get_backend().name == "pgvector"
        settings.RECSYS_VECTOR_BACKEND = "faiss"
        backend = get_backend()
        assert backend.name == "faiss" and type(backend).__module__ == "accelerator.backend"
        q = clustered_vectors(1, seed=33)[0]
        assert [c.item_pk for c in backend.search(vector=q, k=10, filters=HardFilters())] == [
            pk for pk, _ in exact_reference(q, 10)
        ]
    finally:
        _backend.cache_clear()

"""FAISS in a model space (a two-tower version's item vectors): the same answers as pgvector's model space,
filters checked against the table (a change after the build counts at once), one index per version."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest
from django.db import connection

from accelerator import model_space
from catalog.models import Item
from recommendations import retrieval
from recommendations.models import TWO_TOWER_DIM, ModelItemVector, ModelVersion
from recommendations.retrieval import HardFilters, ModelSpace, get_backend
from recommendations.retrieval.pgvector_backend import PgvectorBackend
from tests.accelerator.conftest import RARE, items_create

pytestmark = pytest.mark.django_db

FILTERS = [
    HardFilters(),
    HardFilters(category_prefix=RARE),
    HardFilters(category_prefix=("Electronics",), min_price=Decimal(20), max_price=Decimal(150)),
    HardFilters(in_stock_only=False),
]


def _unit(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.normal(size=(n, TWO_TOWER_DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _version(items: list[Item], *, seed: int) -> ModelVersion:
    version = ModelVersion.objects.create(status=ModelVersion.Status.PROMOTED)
    vectors = _unit(np.random.default_rng(seed), len(items))
    ModelItemVector.objects.bulk_create(
        ModelItemVector(version=version, item=item, embedding=vector)
        for item, vector in zip(items, vectors, strict=True)
    )
    return version


@pytest.fixture
def faiss_backend(faiss_settings):
    # one backend per test: its per-version indexes must not outlive the test's database
    retrieval._backend.cache_clear()
    yield get_backend()
    retrieval._backend.cache_clear()


@pytest.fixture
def versions(faiss_backend):
    items = items_create(600)
    # the last 50 items have no vector in the first version (created after it was trained)
    first = _version(items[:550], seed=1)
    second = _version(items, seed=2)
    with connection.cursor() as cur:
        cur.execute("ANALYZE recommendations_modelitemvector")
    return first, second


def _queries(n: int = 5) -> np.ndarray:
    return _unit(np.random.default_rng(99), n)


@pytest.mark.parametrize("filters", FILTERS)
def test_faiss_answers_as_pgvector_in_a_model_space(versions, faiss_backend, filters):
    assert faiss_backend.name == "faiss"
    for version in versions:
        space = ModelSpace(version.pk)
        for q in _queries():
            expected = PgvectorBackend().search(vector=q, k=20, filters=filters, space=space)
            found = faiss_backend.search(vector=q, k=20, filters=filters, space=space)
            assert [c.item_pk for c in found] == [c.item_pk for c in expected]
            assert [c.distance for c in found] == pytest.approx([c.distance for c in expected], abs=1e-4)


def test_items_without_a_vector_of_the_version_are_not_found(versions, faiss_backend):
    first, _ = versions
    with_vectors = set(ModelItemVector.objects.filter(version=first).values_list("item_id", flat=True))
    found = faiss_backend.search(
        vector=_queries(1)[0], k=600, filters=HardFilters(in_stock_only=False), space=ModelSpace(first.pk)
    )
    assert {c.item_pk for c in found} == with_vectors
    assert len(with_vectors) == 550


def test_a_change_after_the_index_was_built_counts_at_once(versions, faiss_backend):
    _, second = versions
    space, q = ModelSpace(second.pk), _queries(1)[0]
    before = faiss_backend.search(vector=q, k=10, filters=HardFilters(), space=space)
    gone = before[0].item_pk
    Item.objects.filter(pk=gone).update(in_stock=False)  # no signal: only the table knows
    after = faiss_backend.search(vector=q, k=10, filters=HardFilters(), space=space)
    assert gone not in [c.item_pk for c in after]
    assert len(after) == 10
    assert [c.item_pk for c in after] == [
        c.item_pk for c in PgvectorBackend().search(vector=q, k=10, filters=HardFilters(), space=space)
    ]


def test_one_index_per_version_built_once_and_kept(versions, faiss_backend, monkeypatch):
    first, second = versions
    built = []
    build = model_space.model_index_build
    monkeypatch.setattr(
        model_space, "model_index_build", lambda version_id: built.append(version_id) or build(version_id)
    )
    for version in (first, first, second, first, second):
        faiss_backend.search(vector=_queries(1)[0], k=5, filters=HardFilters(), space=ModelSpace(version.pk))
    assert built == [first.pk, second.pk]


def test_a_version_without_vectors_gives_no_candidates(faiss_backend):
    items_create(20)
    empty = ModelVersion.objects.create()
    assert (
        faiss_backend.search(vector=_queries(1)[0], k=5, filters=HardFilters(), space=ModelSpace(empty.pk))
        == []
    )


def test_the_content_space_is_still_the_default(versions, faiss_backend):
    content = faiss_backend.search(
        vector=np.asarray(Item.objects.first().embedding), k=5, filters=HardFilters()
    )
    assert len(content) == 5
    assert content[0].distance == pytest.approx(0.0, abs=1e-5)


def test_an_old_index_is_rebuilt_by_one_thread_while_the_others_search_it(versions, monkeypatch):
    first, _ = versions
    indexes = model_space.ModelIndexes()
    old = indexes.live(first.pk)
    monkeypatch.setattr(model_space, "MODEL_RELOAD_SECONDS", 0.0)
    with indexes._lock:  # another thread is rebuilding
        assert indexes.live(first.pk) is old
    rebuilt = indexes.live(first.pk)
    assert rebuilt is not old and rebuilt is not None
    assert rebuilt.size == old.size == 550


def test_two_tower_serving_searches_the_active_version_through_faiss(
    faiss_backend, settings, tmp_path, monkeypatch
):
    from recommendations import scenarios
    from recommendations.two_tower import serving
    from tests.recommendations.two_tower_factories import TINY, buy_now, planted_shop
    from training.two_tower import registry

    settings.RECSYS_TWO_TOWER = TINY
    settings.RECSYS_TWO_TOWER_DIR = tmp_path / "models"
    settings.RECSYS_TWO_TOWER_MIN_GAIN = 0.0
    shop = planted_shop(seed=0)
    version = registry.model_train_and_gate(seed=0)
    assert version.is_active
    serving.active_version_clear()
    built = []
    build = model_space.model_index_build
    monkeypatch.setattr(
        model_space, "model_index_build", lambda version_id: built.append(version_id) or build(version_id)
    )
    buy_now("shopper", shop.a[3])
    answer = scenarios.recommendations_for_user(user_id="shopper", params=scenarios.ListParams(limit=5))
    assert answer.items[0]["pk"] == shop.c[3].pk  # the learned "after A_3 comes C_3"
    assert built == [version.pk]  # found through FAISS's index of the version

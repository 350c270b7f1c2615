"""Items created, changed and deactivated reach the live index through the signal and the Celery task, without
a rebuild (accelerator/receivers.py, tasks.py, services.faiss_items_apply, search.LiveIndex.with_deltas)."""

from __future__ import annotations

import numpy as np
import pytest

from accelerator import store
from accelerator.backend import FaissBackend
from accelerator.services import faiss_index_build, faiss_index_refresh, live_index_load
from catalog.models import Item
from catalog.signals import item_vectors_changed
from recommendations.retrieval.base import HardFilters
from tests.accelerator.conftest import clustered_vectors, items_create

pytestmark = pytest.mark.django_db


@pytest.fixture(params=["flat", "hnsw"])
def backend(request, faiss_settings, eager_celery):
    if request.param == "hnsw":
        request.getfixturevalue("hnsw")
    items_create(500)
    faiss_index_build()
    b = FaissBackend()
    assert b.live().manifest.index_type == request.param
    return b


def _changed(django_capture_on_commit_callbacks, *pks):
    """What the embedding code does after commit: send item_vectors_changed (the task runs eagerly)."""
    with django_capture_on_commit_callbacks(execute=True):
        item_vectors_changed.send(sender=Item, item_pks=list(pks))


def _pks(hits):
    return [c.item_pk for c in hits]


def test_a_new_item_is_found_after_the_signal_without_a_rebuild(backend, django_capture_on_commit_callbacks):
    q = clustered_vectors(1, seed=21)[0]
    new = items_create(1, seed=77, start=90_000)[0]
    Item.objects.filter(pk=new.pk).update(embedding=q)
    version = backend.live().manifest.version
    assert new.pk not in _pks(backend.search(vector=q, k=5, filters=HardFilters()))

    _changed(django_capture_on_commit_callbacks, new.pk)

    hits = backend.search(vector=q, k=5, filters=HardFilters())
    assert hits[0].item_pk == new.pk and hits[0].distance == pytest.approx(0.0, abs=1e-5)
    assert backend.live().manifest.version == version  # no rebuild happened


def test_a_changed_vector_moves_the_item(backend, django_capture_on_commit_callbacks):
    q = clustered_vectors(1, seed=22)[0]
    far = -q
    first = backend.search(vector=q, k=1, filters=HardFilters())[0].item_pk
    Item.objects.filter(pk=first).update(embedding=far)

    _changed(django_capture_on_commit_callbacks, first)

    assert first not in _pks(backend.search(vector=q, k=20, filters=HardFilters()))
    assert backend.search(vector=far, k=1, filters=HardFilters())[0].item_pk == first


def test_a_deactivated_item_disappears(backend, django_capture_on_commit_callbacks):
    q = clustered_vectors(1, seed=23)[0]
    top = _pks(backend.search(vector=q, k=3, filters=HardFilters()))
    Item.objects.filter(pk=top[0]).update(is_active=False)

    _changed(django_capture_on_commit_callbacks, top[0])

    assert top[0] not in _pks(backend.search(vector=q, k=500, filters=HardFilters(in_stock_only=False)))
    assert _pks(backend.search(vector=q, k=2, filters=HardFilters())) == top[1:]


def test_a_stock_or_price_change_updates_the_filters(backend, django_capture_on_commit_callbacks):
    q = clustered_vectors(1, seed=24)[0]
    top = backend.search(vector=q, k=1, filters=HardFilters())[0].item_pk
    Item.objects.filter(pk=top).update(stock=0, price=999)

    _changed(django_capture_on_commit_callbacks, top)

    assert top not in _pks(backend.search(vector=q, k=500, filters=HardFilters()))
    unfiltered = backend.search(vector=q, k=1, filters=HardFilters(in_stock_only=False))
    assert unfiltered[0].item_pk == top
    priced = backend.search(vector=q, k=1, filters=HardFilters(in_stock_only=False, min_price=999))
    assert _pks(priced) == [top]


def test_updates_reach_other_processes_and_a_rebuild_folds_them_in(
    backend, django_capture_on_commit_callbacks
):
    q = clustered_vectors(1, seed=25)[0]
    new = items_create(1, seed=78, start=91_000)[0]
    Item.objects.filter(pk=new.pk).update(embedding=q)
    _changed(django_capture_on_commit_callbacks, new.pk)
    assert store.delta_seqs()

    other = FaissBackend()  # another web process: base from disk + the delta segment
    assert other.search(vector=q, k=1, filters=HardFilters())[0].item_pk == new.pk

    faiss_index_build()
    assert store.delta_seqs() == []  # folded into the new version
    assert FaissBackend().search(vector=q, k=1, filters=HardFilters())[0].item_pk == new.pk
    assert backend.search(vector=q, k=1, filters=HardFilters())[0].item_pk == new.pk


def test_the_latest_segment_wins_whatever_order_segments_are_applied_in(backend):
    from accelerator.selectors import ItemRows
    from accelerator.store import Delta

    live = backend.live()
    pk = int(live.stored.pks[0])
    q = clustered_vectors(1, seed=26)[0]
    rows = ItemRows(
        pks=np.array([pk]),
        vectors=q[None, :],
        in_stock=np.array([True]),
        price_cents=np.array([100]),
        category_paths=[("New",)],
    )
    newer = Delta(
        seq=live.manifest.delta_seq + 2,
        embedding_model="all-MiniLM-L6-v2",
        item_pks=np.array([pk]),
        rows=rows,
    )
    older_removal = Delta(
        seq=live.manifest.delta_seq + 1,
        embedding_model="all-MiniLM-L6-v2",
        item_pks=np.array([pk]),
        rows=ItemRows.empty(),
    )
    applied = live.with_deltas([newer]).with_deltas([older_removal])
    hits = applied.search(vector=q, k=1, filters=HardFilters(category_prefix=("New",)))
    assert _pks(hits) == [pk]


def test_the_signal_is_ignored_when_pgvector_serves(
    faiss_settings, eager_celery, django_capture_on_commit_callbacks
):
    faiss_settings.RECSYS_VECTOR_BACKEND = "pgvector"
    items = items_create(3)
    _changed(django_capture_on_commit_callbacks, items[0].pk)
    assert store.delta_seqs() == []


def test_refresh_compacts_when_the_overlay_grows(backend, django_capture_on_commit_callbacks, monkeypatch):
    from accelerator import services

    assert faiss_index_refresh().built is False  # fresh index, nothing changed
    monkeypatch.setattr(services, "COMPACT_MAX_ITEMS", 5)
    monkeypatch.setattr(services, "COMPACT_FRACTION", 0.0)
    pks = list(Item.objects.values_list("pk", flat=True)[:300])
    Item.objects.filter(pk__in=pks).update(price=5)
    _changed(django_capture_on_commit_callbacks, *pks)
    assert len(live_index_load().overlay.seqs) == 300

    result = faiss_index_refresh()

    assert result.built and "compaction" in result.reason
    assert len(live_index_load().overlay.seqs) == 0

"""Building, publishing, persisting and reloading the index (accelerator/services.py, store.py)."""

from __future__ import annotations

import json

import numpy as np
import psycopg
import pytest
from django.core.management import call_command
from django.db import connection

from accelerator import store
from accelerator.backend import FaissBackend
from accelerator.services import BUILD_LOCK_KEY, faiss_index_build
from catalog.models import Item
from recommendations.retrieval.base import HardFilters
from tests.accelerator.conftest import clustered_vectors, exact_reference, items_create

pytestmark = pytest.mark.django_db


def test_build_publishes_a_flat_index_with_a_manifest(faiss_settings):
    items = items_create(300)
    Item.objects.filter(pk=items[0].pk).update(is_active=False)
    Item.objects.filter(pk=items[1].pk).update(embedding_model="another-model")

    result = faiss_index_build()

    assert result.built
    manifest = store.manifest_read()
    assert manifest.index_type == "flat"
    assert manifest.count == 298  # the deactivated item and the one of another model are left out
    assert manifest.dim == 384 and manifest.embedding_model == "all-MiniLM-L6-v2"
    on_disk = json.loads((faiss_settings.RECSYS_FAISS_DIR / "CURRENT.json").read_text())
    assert on_disk["version"] == manifest.version
    assert (manifest.directory / "index.faiss").exists()


def test_large_catalogs_get_an_hnsw_index(faiss_settings, hnsw):
    items_create(300)
    faiss_index_build()
    manifest = store.manifest_read()
    assert manifest.index_type == "hnsw"
    assert manifest.params == {"M": 32, "efConstruction": 80}


def test_a_new_backend_instance_loads_the_persisted_index_and_answers_the_same(faiss_settings):
    items_create(400)
    faiss_index_build()
    queries = clustered_vectors(5, seed=99)
    first = FaissBackend()
    answers = [first.search(vector=q, k=10, filters=HardFilters()) for q in queries]

    second = FaissBackend()  # a new process, in effect: nothing shared but the files

    assert [second.search(vector=q, k=10, filters=HardFilters()) for q in queries] == answers
    assert [c.item_pk for c in answers[0]] == [pk for pk, _d in exact_reference(queries[0], 10)]


def test_a_running_backend_picks_up_a_new_version_without_restart(faiss_settings):
    items = items_create(200)
    backend = FaissBackend()
    q = clustered_vectors(1, seed=5)[0]
    backend.search(vector=q, k=5, filters=HardFilters())
    old_version = backend.live().manifest.version
    # A new item right on the query, written without any signal: only the rebuild brings it in.
    new = items_create(1, seed=42, start=10_001)[0]
    Item.objects.filter(pk=new.pk).update(embedding=q)

    faiss_index_build()

    hits = backend.search(vector=q, k=5, filters=HardFilters())
    assert backend.live().manifest.version != old_version
    assert hits[0].item_pk == new.pk and hits[0].distance == pytest.approx(0.0, abs=1e-5)
    assert len(list(faiss_settings.RECSYS_FAISS_DIR.glob("v-*"))) == 2  # current + one previous kept
    assert items  # the catalog was there before


def test_search_without_any_index_builds_one_first(faiss_settings):
    items_create(50)
    backend = FaissBackend()
    hits = backend.search(vector=clustered_vectors(1, seed=3)[0], k=5, filters=HardFilters())
    assert len(hits) == 5
    assert store.manifest_read() is not None


def test_a_second_build_is_skipped_while_the_advisory_lock_is_held(faiss_settings):
    items_create(20)
    params = connection.get_connection_params()
    with psycopg.connect(**{k: v for k, v in params.items() if k != "cursor_factory"}) as other:
        other.execute("SELECT pg_advisory_lock(%s)", [BUILD_LOCK_KEY])
        result = faiss_index_build(wait=False)
        other.execute("SELECT pg_advisory_unlock(%s)", [BUILD_LOCK_KEY])
    assert not result.built and "another build" in result.reason
    assert store.manifest_read() is None
    assert faiss_index_build(wait=False).built


def test_build_command_reports_what_it_published(faiss_settings, capsys):
    items_create(30)
    call_command("build_faiss_index")
    out = capsys.readouterr().out
    assert "Published index" in out and "30 items" in out and "flat" in out


def test_an_unfinished_build_is_never_visible_to_readers(faiss_settings):
    """A temporary directory of a build that died is not a version, and does not disturb the next build."""
    items_create(20)
    faiss_index_build()
    published = store.manifest_read()
    leftover = faiss_settings.RECSYS_FAISS_DIR / ".tmp-crashed"
    leftover.mkdir()
    (leftover / "index.faiss").write_bytes(b"half")
    assert store.manifest_read() == published
    faiss_index_build()
    assert not leftover.exists()
    assert store.manifest_read().version != published.version
    backend = FaissBackend()
    assert len(backend.search(vector=np.ones(384, np.float32), k=3, filters=HardFilters())) == 3

"""The update path end to end with a real Celery worker: signal -> task on the `default` queue -> delta
segment -> a serving process sees the item, with no rebuild."""

from __future__ import annotations

import os
import time
from pathlib import Path
from urllib.parse import quote

import pytest
import redis
from django.conf import settings
from django.db import connection

from accelerator.backend import FaissBackend
from accelerator.services import faiss_index_build
from catalog.models import Item
from catalog.signals import item_vectors_changed
from core.processes import start_celery_worker
from recommendations.retrieval.base import HardFilters
from tests.accelerator.conftest import clustered_vectors, items_create

# How long to wait for the worker to start, then for the update, before calling it lost. Generous, because
# the machine is shared: these are not speed assertions (the freshness observed is printed).
START_SECONDS = 240
WAIT_SECONDS = 60


def _worker_ready(proc, name: str, log: Path) -> None:
    """Wait for the worker's heartbeat key (recsys_project.celery.WorkerHeartbeat)."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    deadline = time.monotonic() + START_SECONDS
    while not client.keys(f"{settings.RECSYS_REDIS_PREFIX}worker:{name}@*"):
        assert proc.poll() is None, log.read_text()
        if time.monotonic() > deadline:
            pytest.fail("the worker did not start:\n" + log.read_text())
        time.sleep(0.2)


@pytest.fixture
def worker(faiss_settings, tmp_path):
    """A worker on this run's Redis database and test database, writing deltas where the test reads them."""
    redis.Redis.from_url(settings.REDIS_URL).flushdb()
    params = connection.get_connection_params()
    host = quote(str(params.get("host", "")), safe="")
    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="recsys_project.settings",
        DATABASE_URL=f"postgresql://{params.get('user', 'postgres')}@{host}/{settings.DATABASES['default']['NAME']}",
        REDIS_URL=settings.REDIS_URL,
        RECSYS_DATA_DIR=str(tmp_path),  # so its index directory is tmp_path / "faiss", like the test's
        RECSYS_VECTOR_BACKEND="faiss",
        LOG_LEVEL="WARNING",
    )
    name = f"faisstest{os.getpid()}"
    proc = start_celery_worker(
        queues=["default"], hostname=f"{name}@%h", loglevel="WARNING", env=env, log=tmp_path / "worker.log",
        extra=["--pool", "solo", "--without-gossip", "--without-mingle"],
    )  # fmt: skip
    try:
        _worker_ready(proc, name, tmp_path / "worker.log")
        yield proc
    finally:
        proc.stop()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_new_item_reaches_the_index_through_a_real_worker(worker, tmp_path):
    items_create(300)
    faiss_index_build()
    backend = FaissBackend()
    q = clustered_vectors(1, seed=61)[0]
    new = items_create(1, seed=62, start=70_000)[0]
    Item.objects.filter(pk=new.pk).update(embedding=q)
    assert backend.search(vector=q, k=1, filters=HardFilters())[0].item_pk != new.pk
    version = backend.live().manifest.version

    sent = time.monotonic()
    item_vectors_changed.send(sender=Item, item_pks=[new.pk])  # as the embedding code does after commit
    while time.monotonic() - sent < WAIT_SECONDS:
        if backend.search(vector=q, k=1, filters=HardFilters())[0].item_pk == new.pk:
            break
        assert worker.poll() is None, (tmp_path / "worker.log").read_text()
        time.sleep(0.05)
    else:
        pytest.fail("the update did not reach the index:\n" + (tmp_path / "worker.log").read_text())
    print(f"visible {time.monotonic() - sent:.2f} s after the signal")
    assert backend.live().manifest.version == version  # no rebuild: a delta segment on the same version
    assert len(backend.live().overlay.pks) == 1

"""A real `celery -A recsys_project worker` process consuming from the real Redis (this run's database,
RECSYS_TEST_REDIS_DB) and writing to the test database: items posted through the API get vectors, and
events posted through the API reach the user's vector, without any call from the test."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import pytest
import redis
from django.conf import settings
from django.db import connection

from catalog.models import Item
from core.processes import start_celery_worker
from interactions.models import Event, UserProfile
from recsys_project.celery import QUEUES

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture
def worker():
    """Start a worker on all three queues against the test database and this run's Redis DB; stop it
    (warm shutdown, then kill) at the end. Its log is printed when a test fails."""
    redis.Redis.from_url(settings.REDIS_URL).flushdb()  # our own DB: drop messages of earlier tests
    db = settings.DATABASES["default"]
    database_url = f"postgresql://{db['USER']}@{quote(db['HOST'], safe='')}/{db['NAME']}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "recsys_project.settings",
        "DATABASE_URL": database_url,
        "REDIS_URL": settings.REDIS_URL,
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    log_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"recsys-test-worker-{os.getpid()}.log"
    process = start_celery_worker(
        queues=QUEUES, concurrency=2, hostname=f"embedtest-{os.getpid()}@%h", env=env, log=log_path,
        extra=["--without-gossip", "--without-mingle"],
    )  # fmt: skip
    try:
        # Ready = the consumer is up and both children have loaded the model (worker_process_init), which
        # takes from a few seconds to over a minute on a busy machine; the waits in the tests are then
        # about the work itself.
        wait_for(
            lambda: (
                process.poll() is not None
                or ("ready." in (text := log_path.read_text()) and text.count("Loading weights: 100%") >= 2)
            ),
            240,
            "the worker and its model",
        )
        assert process.poll() is None, log_path.read_text()
        yield process
    except BaseException:
        print(log_path.read_text()[-5000:])
        raise
    finally:
        process.stop(grace=30)
        connection.close()


def test_worker_embeds_posted_items_and_updates_the_user_vector_from_posted_events(worker, api):
    response = api.post(
        "/api/v1/items",
        {"items": [{"id": "mug", "title": "Ceramic coffee mug"}, {"id": "scarf", "title": "Red wool scarf"}]},
        format="json",
    )
    assert response.status_code == 200
    wait_for(lambda: not Item.objects.filter(embedding__isnull=True).exists(), 60, "item vectors")
    assert not Item.objects.filter(embedding_dirty=True).exists()

    now = "2026-03-02T12:00:00Z"
    events = [
        {"event_id": "e1", "user_id": "u1", "item_id": "mug", "event_type": "purchase", "timestamp": now},
        # an item the catalog does not know yet: kept pending until the item arrives and is embedded
        {"event_id": "e2", "user_id": "u1", "item_id": "lamp", "event_type": "view", "timestamp": now},
    ]
    assert api.post("/api/v1/events", {"events": events}, format="json").status_code == 200
    wait_for(
        lambda: UserProfile.objects.filter(external_id="u1", embedding__isnull=False).exists(),
        30,
        "user vector",
    )
    mug = Item.objects.get(external_id="mug")
    profile = UserProfile.objects.get(external_id="u1")
    assert [round(x, 5) for x in profile.embedding] == [round(x, 5) for x in mug.embedding]
    assert not Event.objects.get(event_id="e2").vector_applied

    api.post("/api/v1/items", {"items": [{"id": "lamp", "title": "Desk lamp"}]}, format="json")
    wait_for(lambda: Event.objects.get(event_id="e2").vector_applied, 60, "the pending event")
    profile.refresh_from_db()
    assert profile.weight_sum == pytest.approx(10.0 + 1.0)


def test_worker_killed_in_the_middle_of_a_batch_loses_no_item(worker, api):
    from datetime import timedelta

    from django.utils import timezone

    from catalog.tasks import dirty_items_sweep_task

    items = [{"id": f"sku{n}", "title": f"Hand-painted ceramic bowl, pattern {n}"} for n in range(300)]
    assert api.post("/api/v1/items", {"items": items}, format="json").status_code == 200
    wait_for(lambda: Item.objects.filter(embedding__isnull=False).exists(), 60, "the first vectors")
    worker.kill()  # the whole worker, children included, mid-batch
    done = Item.objects.filter(embedding__isnull=False, embedding_dirty=False).count()
    assert done < 300, "the worker finished before it was killed; the test proves nothing"
    # Nothing is marked clean without its vector; unfinished items are still dirty (some under a lease).
    assert not Item.objects.filter(embedding__isnull=True, embedding_dirty=False).exists()
    assert Item.objects.filter(embedding_dirty=True).count() == 300 - done
    # Once the dead worker's lease has run out, the sweep embeds the rest.
    Item.objects.filter(embedding_claimed_at__isnull=False).update(
        embedding_claimed_at=timezone.now() - timedelta(hours=1)
    )
    dirty_items_sweep_task()
    assert Item.objects.filter(embedding__isnull=False, embedding_dirty=False).count() == 300

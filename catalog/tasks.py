"""Item embedding tasks. Routed to the `embeddings` queue (recsys_project/celery.py); the sweep goes to
`maintenance`. Each task takes ids, calls catalog.item_vectors and is safe to run twice or to lose: the
dirty flag stays set until a vector is written, and the sweep takes whatever a lost task left."""

from __future__ import annotations

import logging
import time

from celery import shared_task
from celery.signals import worker_process_init
from django.db import OperationalError, transaction

from catalog.embedding import EmbeddingError, get_embedder
from catalog.item_vectors import BACKFILL_BATCH_SIZE, ONLINE_BATCH_SIZE, items_embed, items_mark_stale_model

logger = logging.getLogger(__name__)

# Rounds one on-commit task runs before leaving the rest to the next task or the sweep, so that a huge
# backlog never pins one worker slot for long (64 items per round: ~10-20 s in all).
ONLINE_MAX_ROUNDS = 20
# The sweep stops after this long; its beat entry runs every minute and expires after 55 s.
SWEEP_TIME_BUDGET_SECONDS = 50


@shared_task(
    bind=True,
    autoretry_for=(EmbeddingError, OperationalError),
    retry_backoff=2,
    retry_backoff_max=60,
    retry_jitter=True,
    max_retries=8,
)
def items_embed_task(self, item_pks: list[int]) -> int:
    """Embed the given items, and any other dirty items, in batches of ONLINE_BATCH_SIZE (own items first)."""
    total = 0
    for _round in range(ONLINE_MAX_ROUNDS):
        result = items_embed(item_pks=item_pks, limit=ONLINE_BATCH_SIZE)
        total += result.embedded + result.skipped
        if result.claimed < ONLINE_BATCH_SIZE:
            break
        item_pks = []
    return total


@shared_task(autoretry_for=(OperationalError,), retry_backoff=5, max_retries=3)
def dirty_items_sweep_task() -> int:
    """Catch up: embed every item still dirty (writes made while Redis or the workers were down, tasks
    lost with a dead worker, a model change)."""
    started = time.monotonic()
    marked = items_mark_stale_model()
    if marked:
        logger.info("%d items have vectors of another model; marked for re-embedding", marked)
    total = 0
    while time.monotonic() - started < SWEEP_TIME_BUDGET_SECONDS:
        result = items_embed(limit=BACKFILL_BATCH_SIZE)
        total += result.embedded + result.skipped
        if result.claimed == 0:
            break
    if total:
        logger.info("sweep embedded %d items", total)
    return total


def items_embed_enqueue(*, item_pks: list[int]) -> None:
    """Queue the embedding of these items once the current transaction commits. A broker outage never
    fails the write: the items are dirty already, and the sweep embeds them when Redis is back."""
    pks = list(item_pks)
    if not pks:
        return

    def publish() -> None:
        try:
            items_embed_task.apply_async(args=[pks], retry=False)
        except Exception as exc:  # noqa: BLE001 - kombu/redis raise many types; any of them means "later"
            logger.warning("could not queue the embedding of %d items (%s); the sweep will", len(pks), exc)

    transaction.on_commit(publish)


@worker_process_init.connect
def _load_embedder_at_worker_start(**_kwargs) -> None:
    """Load the model when a worker process starts, not on its first task: the first item after a
    restart would otherwise wait ~2-5 s for the model (the freshness target is 2 s)."""
    try:
        get_embedder()
    except Exception:  # noqa: BLE001 - a broken model must not stop the worker; tasks report it
        logger.exception("could not load the embedding model at worker start")

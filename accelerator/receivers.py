"""Hooks the catalog's `item_vectors_changed` signal to the index update task, when FAISS serves."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction

logger = logging.getLogger(__name__)


def items_changed_enqueue(*, item_pks: list[int]) -> None:
    """Queue the update of these items (after commit, if inside a transaction). If the broker is down the
    change is not lost for good: the hourly refresh and `faiss_consistency --repair` catch up."""
    from accelerator.services import DELTA_MAX_ITEMS
    from accelerator.tasks import faiss_index_refresh_maintenance_task, faiss_items_apply_task

    pks = sorted({int(pk) for pk in item_pks})
    if not pks:
        return

    def enqueue() -> None:
        try:
            if len(pks) > DELTA_MAX_ITEMS:
                # A change this large (a re-embed of the catalog) is cheaper as a rebuild than as a delta.
                faiss_index_refresh_maintenance_task.delay(force=True)
            else:
                faiss_items_apply_task.delay(pks)
        except Exception:  # noqa: BLE001 - a broker outage must not fail the write that sent the signal
            logger.warning("faiss: could not queue the update of %s items; the refresh job will", len(pks))

    transaction.on_commit(enqueue)


def on_item_vectors_changed(sender, item_pks=(), **kwargs) -> None:
    if settings.RECSYS_VECTOR_BACKEND != "faiss":
        return  # pgvector reads the table itself
    items_changed_enqueue(item_pks=list(item_pks))

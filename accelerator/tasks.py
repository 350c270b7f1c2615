"""Celery tasks of the accelerator. Both take ids (or nothing) and are safe to run twice."""

from __future__ import annotations

from celery import shared_task
from django.db import InterfaceError, OperationalError

from accelerator import services


@shared_task(autoretry_for=(OperationalError, InterfaceError, OSError), retry_backoff=1, max_retries=5)
def faiss_items_apply_task(item_pks: list[int]) -> int:
    """Bring the index up to date for these items (queue `default`): writes a delta segment that every
    serving process applies within a second. Returns the number of segments written."""
    return services.faiss_items_apply(item_pks=item_pks)


@shared_task
def faiss_index_refresh_maintenance_task(force: bool = False) -> str:
    """Rebuild the index when due (queue `maintenance`, hourly on the beat schedule). With `force`, rebuild
    now. The build's advisory lock makes a second concurrent run a no-op."""
    from django.conf import settings

    if settings.RECSYS_VECTOR_BACKEND != "faiss":
        return "skipped: RECSYS_VECTOR_BACKEND is not faiss"
    result = services.faiss_index_build(wait=False) if force else services.faiss_index_refresh()
    return result.reason

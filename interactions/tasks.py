"""User-vector tasks (the `default` queue; the sweeps go to `maintenance`). Safe to run twice or to
lose: an event is folded into its user's vector in the same transaction that marks it applied, and the
sweep applies whatever a lost task left pending. The unlinked-events sweep links late events to their
items (a linked row is no longer a candidate, so a repeat finds nothing)."""

from __future__ import annotations

import logging
import time

from celery import shared_task
from django.db import OperationalError, transaction

from interactions.signals import user_vectors_changed
from interactions.user_vectors import user_vectors_apply, user_vectors_apply_all

logger = logging.getLogger(__name__)

# The sweep stops after this long; its beat entry runs every minute and expires after 55 s.
SWEEP_TIME_BUDGET_SECONDS = 50


@shared_task(autoretry_for=(OperationalError,), retry_backoff=1, retry_backoff_max=30, max_retries=8)
def user_vectors_apply_task(event_pks: list[int]) -> int:
    """Fold newly stored events into their users' vectors."""
    result = user_vectors_apply_all(event_pks=event_pks)
    _changed(result.user_ids)
    return result.events


@shared_task(autoretry_for=(OperationalError,), retry_backoff=1, retry_backoff_max=30, max_retries=8)
def user_vectors_apply_for_items_task(item_pks: list[int]) -> int:
    """Items got vectors: apply the events that were waiting for them."""
    result = user_vectors_apply_all(item_pks=item_pks)
    _changed(result.user_ids)
    return result.events


@shared_task(autoretry_for=(OperationalError,), retry_backoff=5, max_retries=3)
def pending_user_events_sweep_task() -> int:
    """Catch up: apply every pending event whose item has a vector (events stored while Redis or the
    workers were down, tasks lost with a dead worker)."""
    started = time.monotonic()
    total = 0
    while time.monotonic() - started < SWEEP_TIME_BUDGET_SECONDS:
        result = user_vectors_apply()
        total += result.events
        _changed(result.user_ids)
        if result.events == 0:
            break
    if total:
        logger.info("sweep applied %d pending events to user vectors", total)
    return total


@shared_task(autoretry_for=(OperationalError,), retry_backoff=5, max_retries=3)
def unlinked_events_sweep_task() -> int:
    """Catch up: link events whose item arrived while they were being stored (see events_relink)."""
    from interactions.services import events_relink  # services queue this module's tasks

    linked = events_relink()
    if linked:
        logger.info("sweep linked %d events to items created after them", linked)
    return linked


def _changed(user_ids: set[str]) -> None:
    """Tell the listeners (candidate lists) whose vectors changed; the apply has committed by now."""
    if user_ids:
        user_vectors_changed.send(sender=None, user_ids=sorted(user_ids))


def _publish(task, args: list, what: str) -> None:
    try:
        task.apply_async(args=args, retry=False)
    except Exception as exc:  # noqa: BLE001 - kombu/redis raise many types; any of them means "later"
        logger.warning("could not queue %s (%s); the sweep will apply it", what, exc)


def user_vectors_enqueue(*, event_pks: list[int]) -> None:
    """Queue the user-vector update for these events once the current transaction commits. A broker
    outage never fails the write: the events stay pending and the sweep applies them."""
    pks = list(event_pks)
    if pks:
        transaction.on_commit(lambda: _publish(user_vectors_apply_task, [pks], f"{len(pks)} events"))


def on_item_vectors_changed(sender, *, item_pks: list[int], **kwargs) -> None:
    """catalog.signals.item_vectors_changed receiver (sent after commit): events may be waiting for these
    items' vectors. One indexed query (event_vector_pending) decides whether a task is worth queueing."""
    from interactions.models import Event

    pks = list(item_pks)
    if Event.objects.filter(item_id__in=pks, vector_applied=False, user_id__isnull=False).exists():
        _publish(user_vectors_apply_for_items_task, [pks], f"pending events of {len(pks)} items")

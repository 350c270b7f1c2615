"""Serving's periodic work."""

from __future__ import annotations

import hashlib
import logging
import time

from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from django.db import OperationalError, transaction

# co-visitation is imported with the worker, not by its first fold (scipy: ~1 s on a loaded box, seen as a
# 2 s first freshness trial)
from recommendations import services
from recommendations.covisitation import covisitation_compact, covisitation_fold, covisitation_fold_pending

logger = logging.getLogger(__name__)

# How long a user's "refresh queued" mark lives if its task is lost (the sweep recomputes the list anyway).
PENDING_TTL_SECONDS = 60


@shared_task(acks_late=True, ignore_result=True)
def item_popularity_refresh_task() -> None:
    """Safe to repeat: a full recomputation under an advisory lock."""
    services.item_popularity_refresh()


# --- co-visitation (recommendations/covisitation.py)

# The sweep stops after this long; its beat entry runs every minute and expires after 55 s.
COVISITATION_SWEEP_BUDGET_SECONDS = 50


@shared_task(autoretry_for=(OperationalError,), retry_backoff=1, retry_backoff_max=30, max_retries=8)
def covisitation_fold_task(event_pks: list[int]) -> int:
    """Fold newly stored events into co-visitation. Safe to repeat or lose: an event is claimed in the
    transaction that folds it, and the sweep folds whatever a lost task left."""
    return covisitation_fold(event_pks=event_pks)


@shared_task(autoretry_for=(OperationalError,), retry_backoff=5, max_retries=3)
def covisitation_sweep_task() -> int:
    """Catch up: fold events nobody folded (broker down, lost tasks, events linked to their item late)."""
    started, total = time.monotonic(), 0
    while time.monotonic() - started < COVISITATION_SWEEP_BUDGET_SECONDS:
        folded = covisitation_fold_pending()
        total += folded
        if folded == 0:
            break
    if total:
        logger.info("sweep folded %d events into co-visitation", total)
    return total


@shared_task(autoretry_for=(OperationalError,), retry_backoff=5, max_retries=3)
def covisitation_compact_maintenance_task() -> str:
    """Merge the appended increments and prune. Safe to repeat (a second run finds nothing to merge)."""
    result = covisitation_compact()
    return f"merged {result.merged}, pruned {result.pruned}"


def covisitation_enqueue(sender, *, event_pks: list[int], **kwargs) -> None:
    """interactions.signals.events_stored receiver (inside the storing transaction): fold the events once
    it commits. A broker outage never fails the write: the sweep folds them."""
    pks = list(event_pks)
    if pks:
        transaction.on_commit(lambda: _publish(covisitation_fold_task, [pks]))


# --- pre-computed candidates (recommendations/candidate_cache.py)


@shared_task(autoretry_for=(OperationalError,), retry_backoff=1, retry_backoff_max=30, max_retries=8)
def candidate_lists_refresh_task(user_ids: list[str]) -> int:
    """Recompute these users' candidate lists (their events were just applied). Safe to repeat or lose: a
    list that missed an event is never served (the live path answers), and the sweep recomputes it."""
    from recommendations.candidate_cache import candidate_lists_refresh

    _pending_clear(user_ids)  # an event from now on queues another refresh
    return candidate_lists_refresh(user_ids=user_ids)


def _pending_key(user_id: str) -> str:
    # a digest, not the id: nothing in Redis names a user (erasure)
    return "candidates:pending:" + hashlib.sha256(user_id.encode()).hexdigest()[:24]


def _pending_mark(user_ids: list[str]) -> list[str]:
    """The users with no refresh queued yet, now marked as queued (for at most PENDING_TTL_SECONDS, in
    case the task is lost). Redis down: all of them (publishing will fail too, and the sweep catches up)."""
    try:
        return [u for u in user_ids if cache.add(_pending_key(u), 1, timeout=PENDING_TTL_SECONDS)]
    except Exception:  # noqa: BLE001 - a cache outage must not fail the event's task
        return user_ids


def _pending_clear(user_ids: list[str]) -> None:
    try:
        cache.delete_many([_pending_key(u) for u in user_ids])
    except Exception:  # noqa: BLE001
        logger.warning("could not clear the pending candidate-list marks; they expire by themselves")


@shared_task(autoretry_for=(OperationalError,), retry_backoff=5, max_retries=3)
def candidate_lists_sweep_task() -> int:
    """Catch up: the lists of active users that are missing, outdated by a model or profile change or by
    events no task reported, or due for their periodic refresh. Stops itself after 50 s."""
    from recommendations.candidate_cache import candidate_lists_sweep

    done = candidate_lists_sweep()
    if done:
        logger.info("sweep recomputed %d candidate lists", done)
    return done


def candidate_lists_enqueue(sender, *, user_ids: list[str], **kwargs) -> None:
    """interactions.signals.user_vectors_changed receiver (sent after commit): recompute their lists,
    coalesced: one refresh per user is queued at a time, run RECSYS_CANDIDATE_CACHE_COALESCE_SECONDS
    later, and sees every event up to then. (One refresh per event cost the worker ~50-80 ms per event
    on the hybrid path, and under the Jepsen ingest left hundreds of user-vector tasks waiting behind
    it.) Until the list is recomputed the user's answers come from the live path, so freshness does not
    wait for it. A broker outage never fails the caller: the sweep recomputes them."""
    ids = _pending_mark(list(user_ids))
    if ids:
        countdown = settings.RECSYS_CANDIDATE_CACHE_COALESCE_SECONDS
        transaction.on_commit(lambda: _publish(candidate_lists_refresh_task, [ids], countdown=countdown))


# --- pre-computed item lists (recommendations/item_cache.py)

# How long an item's "refresh queued" mark lives if its task is lost (the next miss queues it again).
ITEM_PENDING_TTL_SECONDS = 60


@shared_task(autoretry_for=(OperationalError,), retry_backoff=1, retry_backoff_max=30, max_retries=8)
def item_lists_refresh_task(item_pks: list[int]) -> int:
    """Compute these items' lists (a request missed them). Safe to repeat or lose: the next miss queues
    them again, and the sweep computes the popular ones."""
    from recommendations.item_cache import item_lists_refresh

    try:
        cache.delete_many([_item_pending_key(pk) for pk in item_pks])
    except Exception:  # noqa: BLE001
        logger.warning("could not clear the pending item-list marks; they expire by themselves")
    return item_lists_refresh(item_pks=item_pks)


def _item_pending_key(item_pk: int) -> str:
    return f"item-lists:pending:{int(item_pk)}"


def item_lists_enqueue(*, item_pks: list[int]) -> None:
    """Called by a request that missed (recommendations.scenarios): queue the items' lists once per
    ITEM_PENDING_TTL_SECONDS. With Redis down nothing is queued (the mark fails first, and publishing would
    wait on the same Redis): the request is served live, and the sweep catches up on popular items."""
    try:
        pks = [pk for pk in item_pks if cache.add(_item_pending_key(pk), 1, timeout=ITEM_PENDING_TTL_SECONDS)]
    except Exception:  # noqa: BLE001 - a cache outage must not fail the request
        return
    if pks:
        _publish(item_lists_refresh_task, [pks])


@shared_task(autoretry_for=(OperationalError,), retry_backoff=1, retry_backoff_max=30, max_retries=8)
def item_lists_nearby_task(item_pks: list[int]) -> int:
    """These items got a vector: recompute their own lists and those of their nearest items that they may
    enter (item_cache.item_lists_nearby). Safe to repeat or lose: the refresh age bounds what is missed."""
    from django.utils import timezone

    from recommendations.item_cache import item_lists_nearby, item_lists_refresh

    return item_lists_refresh(item_pks=item_lists_nearby(item_pks=item_pks, before=timezone.now()))


def item_lists_nearby_enqueue(sender, *, item_pks=(), **kwargs) -> None:
    """catalog.signals.item_vectors_changed receiver (sent after commit). A broker outage never fails the
    caller: the sweep's refresh age catches up."""
    pks = [int(pk) for pk in item_pks]
    if pks and settings.RECSYS_ITEM_CACHE:
        _publish(item_lists_nearby_task, [pks])


@shared_task(autoretry_for=(OperationalError,), retry_backoff=5, max_retries=3)
def item_lists_sweep_task() -> int:
    """Catch up: item lists that are a miss now, the popular items' missing lists, and lists due for their
    periodic refresh; then drop those too old to serve. Stops itself after 50 s."""
    from recommendations.item_cache import item_lists_sweep

    done = item_lists_sweep()
    if done:
        logger.info("sweep recomputed %d item lists", done)
    return done


def _publish(task, args: list, countdown: float | None = None) -> None:
    try:
        task.apply_async(args=args, retry=False, countdown=countdown)
    except Exception as exc:  # noqa: BLE001 - kombu/redis raise many types; any of them means "later"
        logger.warning("could not queue %s (%s); the sweep will do it", task.name, exc)

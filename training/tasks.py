"""Training's background work: the scheduled retraining and the item-tower vectors of new items.

The tasks keep the names they had in `recommendations.tasks` (the beat schedule, the queue routes and any
message already queued name them so)."""

from __future__ import annotations

import logging

from celery import shared_task
from django.db import transaction

from recommendations.two_tower import serving

logger = logging.getLogger(__name__)

TASK_PREFIX = "recommendations.tasks"


@shared_task(name=f"{TASK_PREFIX}.two_tower_train_maintenance_task", acks_late=True, ignore_result=True)
def two_tower_train_maintenance_task() -> str:
    """Scheduled retraining. Safe to repeat: a run that finds the training advisory lock taken does
    nothing, and an interrupted run leaves a version marked `training` that is never activated."""
    from training.ranker import registry as ranker_registry
    from training.two_tower import registry

    try:
        version = registry.model_train_and_gate()
        towers = f"v{version.pk} {version.status}"
    except registry.TrainingBusy:
        return "busy"
    except ValueError as exc:  # too little data to train or gate on (a new or tiny shop): not an error
        logger.warning("two-tower: not trained: %s", exc)
        towers = f"towers not trained ({exc})"
    # the ranker retrains on the same schedule, after the towers (its gate serves through them)
    try:
        ranker = ranker_registry.ranker_train_and_gate()
    except ranker_registry.TrainingBusy:
        return f"{towers}; ranker busy"
    except ValueError as exc:
        logger.warning("ranker: not trained: %s", exc)
        return f"{towers}; ranker not trained ({exc})"
    return f"{towers}; ranker v{ranker.pk} {ranker.status}"


@shared_task(
    name=f"{TASK_PREFIX}.two_tower_items_refresh_task",
    bind=True,
    acks_late=True,
    ignore_result=True,
    max_retries=3,
    default_retry_delay=30,
)
def two_tower_items_refresh_task(self, item_pks: list[int]) -> int:
    """New or re-embedded items get the active version's item-tower vector. Safe to repeat (an upsert)."""
    from training.two_tower import registry

    try:
        return registry.vectors_refresh_items(item_pks=item_pks)
    except Exception as exc:  # noqa: BLE001 - retried; the next training run writes every item anyway
        raise self.retry(exc=exc) from exc


def on_item_vectors_changed(sender, item_pks=(), **kwargs) -> None:
    """catalog.signals.item_vectors_changed: queue the item-tower vectors of these items for the active
    version (after commit; the web process never loads torch for it)."""
    pks = sorted({int(pk) for pk in item_pks})
    if not pks or serving.active_version() is None:
        return

    def enqueue() -> None:
        try:
            two_tower_items_refresh_task.delay(pks)
        except Exception:  # noqa: BLE001 - a broker outage must not fail the write that sent the signal
            logger.warning(
                "two-tower: could not queue the vectors of %s items; the next training run will", len(pks)
            )

    transaction.on_commit(enqueue)

"""Serving's periodic work."""

from __future__ import annotations

from celery import shared_task

from recommendations import services


@shared_task(acks_late=True, ignore_result=True)
def item_popularity_refresh_task() -> None:
    """Safe to repeat: a full recomputation under an advisory lock."""
    services.item_popularity_refresh()


@shared_task(acks_late=True, ignore_result=True)
def two_tower_train_maintenance_task() -> str:
    """Scheduled retraining. Safe to repeat: a run that finds the training advisory lock taken does
    nothing, and an interrupted run leaves a version marked `training` that is never activated."""
    from recommendations.ranker import registry as ranker_registry
    from recommendations.two_tower import registry

    try:
        version = registry.model_train_and_gate()
    except registry.TrainingBusy:
        return "busy"
    # the ranker retrains on the same schedule, after the towers (its gate serves through them)
    try:
        ranker = ranker_registry.ranker_train_and_gate()
    except ranker_registry.TrainingBusy:
        return f"v{version.pk} {version.status}; ranker busy"
    return f"v{version.pk} {version.status}; ranker v{ranker.pk} {ranker.status}"


@shared_task(bind=True, acks_late=True, ignore_result=True, max_retries=3, default_retry_delay=30)
def two_tower_items_refresh_task(self, item_pks: list[int]) -> int:
    """New or re-embedded items get the active version's item-tower vector. Safe to repeat (an upsert)."""
    from recommendations.two_tower import registry

    try:
        return registry.vectors_refresh_items(item_pks=item_pks)
    except Exception as exc:  # noqa: BLE001 - retried; the next training run writes every item anyway
        raise self.retry(exc=exc) from exc

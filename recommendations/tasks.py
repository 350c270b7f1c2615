"""Serving's periodic work."""

from __future__ import annotations

from celery import shared_task

from recommendations import services


@shared_task(acks_late=True, ignore_result=True)
def item_popularity_refresh_task() -> None:
    """Safe to repeat: a full recomputation under an advisory lock."""
    services.item_popularity_refresh()

"""Analytics tasks: sweeps (safe to repeat, idempotent) on the maintenance queue, run by beat."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from analytics.attribution import events_attribute_recent
from analytics.rollups import daily_metrics_rollups


@shared_task(bind=True, max_retries=3, default_retry_delay=30)
def attribution_sweep_task(self) -> dict[str, int]:
    """Attribute events ingested since the last sweep (the cursor row serialises concurrent runs)."""
    try:
        return events_attribute_recent()
    except Exception as exc:  # noqa: BLE001 - retried; the next sweep catches up anyway
        raise self.retry(exc=exc) from exc


@shared_task(bind=True, max_retries=3, default_retry_delay=60)
def metrics_rollup_sweep_task(self) -> dict[str, int | None]:
    """Roll up today and yesterday (late events and late conversions land in yesterday's numbers); a day
    that fails is dead-lettered (None) and the other still rolls up."""
    today = timezone.now().date()
    try:
        return daily_metrics_rollups(days=[today - timedelta(days=1), today])
    except Exception as exc:  # noqa: BLE001
        raise self.retry(exc=exc) from exc


@shared_task
def events_retention_sweep_task() -> dict[str, int]:
    """Prune raw events, then the served lists they no longer refer to, past RECSYS_EVENT_RETENTION_DAYS
    (0: keep forever); safe to repeat."""
    from dataclasses import asdict

    from django.conf import settings

    from analytics.retention import PruneResult, retention_prune

    days = settings.RECSYS_EVENT_RETENTION_DAYS
    return asdict(retention_prune(days=days) if days else PruneResult())


@shared_task(bind=True, max_retries=20, default_retry_delay=30)
def evaluation_job_maintenance_task(self, job_id: int) -> str:
    """An evaluation started from the report page (analytics.services.evaluation_job_execute). Safe to
    repeat: the job is claimed with a conditional UPDATE; while another evaluation runs, retried later."""
    from analytics.services import evaluation_job_execute

    outcome = evaluation_job_execute(job_id=job_id)
    if outcome == "busy":
        raise self.retry()
    return outcome

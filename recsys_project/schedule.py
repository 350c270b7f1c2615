"""The one periodic schedule (PostHog's scheduled.py). Each entry has an expiry, so a backlog built up
while workers were down does not run stale copies of the same job back to back."""

from __future__ import annotations

from celery.schedules import crontab  # noqa: F401  (used by entries added by the apps)

BEAT_SCHEDULE: dict[str, dict] = {}

# analytics: attribute new clicks/purchases every minute; roll up today's and yesterday's metrics.
BEAT_SCHEDULE["analytics-attribution-sweep"] = {
    "task": "analytics.tasks.attribution_sweep_task",
    "schedule": crontab(minute="*"),
    "options": {"expires": 50},
}
BEAT_SCHEDULE["analytics-metrics-rollup"] = {
    "task": "analytics.tasks.metrics_rollup_sweep_task",
    "schedule": crontab(minute="*/15"),
    "options": {"expires": 10 * 60},
}

"""The one periodic schedule (PostHog's scheduled.py). Each entry has an expiry, so a backlog built up
while workers were down does not run stale copies of the same job back to back."""

from __future__ import annotations

from celery.schedules import crontab  # noqa: F401  (used by entries added by the apps)

BEAT_SCHEDULE: dict[str, dict] = {}

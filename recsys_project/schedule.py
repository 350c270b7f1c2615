"""The one periodic schedule (PostHog's scheduled.py). Each entry has an expiry, so a backlog built up
while workers were down does not run stale copies of the same job back to back."""

from __future__ import annotations

from celery.schedules import crontab  # noqa: F401  (used by entries added by the apps)
from django.conf import settings

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

# privacy: prune raw events past RECSYS_EVENT_RETENTION_DAYS (no-op when 0), once they are attributed,
# rolled up and folded into user vectors, then the served lists no remaining event refers to
# (analytics/retention.py).
BEAT_SCHEDULE["analytics-events-retention-sweep"] = {
    "task": "analytics.tasks.events_retention_sweep_task",
    "schedule": crontab(minute=41, hour=3),
    "options": {"expires": 60 * 60},
}

# embeddings: embed items still dirty (writes made while Redis or the workers were down, a model change),
# and apply events whose items have vectors by now. Each run stops itself after 50 s.
BEAT_SCHEDULE["catalog-dirty-items-sweep"] = {
    "task": "catalog.tasks.dirty_items_sweep_task",
    "schedule": crontab(minute="*"),
    "options": {"expires": 55},
}
BEAT_SCHEDULE["interactions-pending-user-events-sweep"] = {
    "task": "interactions.tasks.pending_user_events_sweep_task",
    "schedule": crontab(minute="*"),
    "options": {"expires": 55},
}

# events: link events whose item was being created while they were stored (neither transaction saw the
# other, so item_upsert could not link them), and fold them into their users' vectors.
BEAT_SCHEDULE["interactions-unlinked-events-sweep"] = {
    "task": "interactions.tasks.unlinked_events_sweep_task",
    "schedule": crontab(minute="5-59/10"),
    "options": {"expires": 9 * 60},
}

# serving: recompute time-decayed item popularity (trending, popularity penalty, exploration).
BEAT_SCHEDULE["recommendations-item-popularity-refresh"] = {
    "task": "recommendations.tasks.item_popularity_refresh_task",
    "schedule": crontab(minute="*/10"),
    "options": {"expires": 9 * 60},
}

# co-visitation: fold events no task folded (lost tasks, broker outages, events linked late), and merge the
# appended increments into the compacted table, pruning each touched item to its best neighbours.
BEAT_SCHEDULE["recommendations-covisitation-sweep"] = {
    "task": "recommendations.tasks.covisitation_sweep_task",
    "schedule": crontab(minute="*"),
    "options": {"expires": 55},
}
BEAT_SCHEDULE["recommendations-covisitation-compact"] = {
    "task": "recommendations.tasks.covisitation_compact_maintenance_task",
    "schedule": crontab(minute="*/5"),
    "options": {"expires": 4 * 60},
}

# pre-computed candidates: recompute the lists of active users that are missing, outdated (a model or profile
# change, events no task reported) or due for their periodic refresh; drop those too old to serve.
BEAT_SCHEDULE["recommendations-candidate-lists-sweep"] = {
    "task": "recommendations.tasks.candidate_lists_sweep_task",
    "schedule": crontab(minute="*"),
    "options": {"expires": 55},
}

# pre-computed item lists (similar, one-item sessions): recompute the lists that are a miss now (a model or
# profile change, a new vector of the item), compute the most popular items' missing lists, refresh the aged
# ones; drop those too old to serve.
BEAT_SCHEDULE["recommendations-item-lists-sweep"] = {
    "task": "recommendations.tasks.item_lists_sweep_task",
    "schedule": crontab(minute="*"),
    "options": {"expires": 55},
}

# accelerator: rebuild the FAISS index when due (none yet, model changed, overlay of changes past 2%, or a
# day old). No-op unless RECSYS_VECTOR_BACKEND=faiss; the build's advisory lock keeps it to one at a time.
BEAT_SCHEDULE["accelerator-faiss-index-refresh"] = {
    "task": "accelerator.tasks.faiss_index_refresh_maintenance_task",
    "schedule": crontab(minute=23),
    "options": {"expires": 30 * 60},
}

# two-tower model: retrain, gate on the offline evaluation, promote only if better. Weekly by default
# (Sunday 03:00); RECSYS_TWO_TOWER_SCHEDULE takes a crontab ("m h dom mon dow", e.g. "0 3 * * *" daily for
# a fast-moving catalog). The training advisory lock keeps it to one run at a time.
_minute, _hour, _dom, _month, _dow = settings.RECSYS_TWO_TOWER_SCHEDULE.split()
BEAT_SCHEDULE["recommendations-two-tower-train"] = {
    "task": "recommendations.tasks.two_tower_train_maintenance_task",
    "schedule": crontab(
        minute=_minute, hour=_hour, day_of_month=_dom, month_of_year=_month, day_of_week=_dow
    ),
    "options": {"expires": 6 * 60 * 60},
}

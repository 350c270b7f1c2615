"""The workers' heartbeats in Redis: written by the Celery app's `WorkerHeartbeat` step
(recsys_project/celery.py), read by /healthz (core/health.py).

A worker writes its heartbeat every WORKER_HEARTBEAT_SECONDS with a TTL of WORKER_HEARTBEAT_TTL: a killed
worker drops out of /healthz at most WORKER_HEARTBEAT_TTL seconds after its last beat (two missed beats are
tolerated, e.g. a busy machine); a worker that stops cleanly removes its heartbeat at once."""

from __future__ import annotations

from django.conf import settings

WORKER_HEARTBEAT_SECONDS = 2
WORKER_HEARTBEAT_TTL = 6


def worker_heartbeat_prefix() -> str:
    """`recsys:<instance>:worker:`: /healthz sees the workers of its own instance only."""
    return settings.RECSYS_REDIS_PREFIX + "worker:"

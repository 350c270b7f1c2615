"""GET /healthz: the state of the database, Redis and this instance's workers, read cheaply."""

from __future__ import annotations

import json

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.http import require_GET

from core import replicas
from core.heartbeat import WORKER_HEARTBEAT_TTL, worker_heartbeat_prefix


def database_status() -> dict:
    try:
        with connection.cursor() as cur:
            cur.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
            row = cur.fetchone()
        return {"ok": True, "pgvector": row[0] if row else None, "vendor": connection.vendor}
    except Exception as exc:  # noqa: BLE001 - report, never raise
        return {"ok": False, "error": str(exc).splitlines()[0] if str(exc) else type(exc).__name__}


def redis_status() -> tuple[dict, list[dict]]:
    """Redis's state and this instance's live workers, each with the age of its last heartbeat. The age
    comes from the key's remaining TTL, i.e. from Redis's clock: a worker on a machine whose clock is off
    is still reported right."""
    import redis

    try:
        client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=0.5, socket_connect_timeout=0.5)
        client.ping()
        keys = list(client.scan_iter(match=worker_heartbeat_prefix() + "*", count=100))
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.get(key)
            pipe.pttl(key)
        answers = pipe.execute()
        workers = []
        for raw, ttl_ms in zip(answers[::2], answers[1::2], strict=True):
            if not raw or ttl_ms is None or ttl_ms < 0:  # expired meanwhile, or not a heartbeat we wrote
                continue
            info = json.loads(raw)
            info.pop("at", None)
            info["heartbeat_age_seconds"] = round(max(0.0, WORKER_HEARTBEAT_TTL - ttl_ms / 1000), 1)
            workers.append(info)
        return {"ok": True}, workers
    except Exception as exc:  # noqa: BLE001
        return {"ok": False, "error": str(exc).splitlines()[0] if str(exc) else type(exc).__name__}, []


@require_GET
def healthz(request):
    """200 while the database answers (the one hard dependency: ingestion and serving work without Redis
    and workers, degraded); 503 when it does not. The body tells the truth about every part."""
    db = database_status()
    redis_state, workers = redis_status()
    replica_states = replicas.replicas_status()
    body = {
        "status": "ok"
        if db["ok"] and redis_state["ok"] and workers
        else ("degraded" if db["ok"] else "down"),
        "database": db,
        "redis": redis_state,
        "workers": {
            "ok": bool(workers),
            "count": len(workers),
            "alive": sorted(workers, key=lambda w: w["hostname"]),
            # A worker beats every few seconds; a killed one is gone from `alive` after at most this long.
            "gone_after_seconds": WORKER_HEARTBEAT_TTL,
        },
    }
    if replica_states:
        # Serving reads fall back to the primary when no replica is usable: reported, not a failure.
        body["replicas"] = {
            "ok": any(r["ok"] for r in replica_states),
            "max_lag_seconds": settings.RECSYS_REPLICA_MAX_LAG_SECONDS,
            "all": replica_states,
        }
    return JsonResponse(body, status=200 if db["ok"] else 503)

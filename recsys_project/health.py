"""GET /healthz: the state of the database, Redis and the workers, read cheaply."""

from __future__ import annotations

import json
import time

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.http import require_GET

from recsys_project.celery import WORKER_HEARTBEAT_KEY


def database_status() -> dict:
    try:
        with connection.cursor() as cur:
            cur.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
            row = cur.fetchone()
        return {"ok": True, "pgvector": row[0] if row else None, "vendor": connection.vendor}
    except Exception as exc:  # noqa: BLE001 - report, never raise
        return {"ok": False, "error": str(exc).splitlines()[0] if str(exc) else type(exc).__name__}


def redis_status() -> tuple[dict, list[dict]]:
    import redis

    try:
        client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=0.5, socket_connect_timeout=0.5)
        client.ping()
        workers = []
        for key in client.scan_iter(match=WORKER_HEARTBEAT_KEY + "*", count=100):
            raw = client.get(key)
            if raw:
                info = json.loads(raw)
                info["seconds_ago"] = round(time.time() - info.pop("at", time.time()), 1)
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
        },
    }
    return JsonResponse(body, status=200 if db["ok"] else 503)

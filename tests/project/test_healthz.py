from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from django.conf import settings

from recsys_project.celery import WORKER_HEARTBEAT_KEY

pytestmark = pytest.mark.django_db
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def redis_client():
    client = redis.Redis.from_url(settings.REDIS_URL)
    for key in client.scan_iter(match=WORKER_HEARTBEAT_KEY + "*"):
        client.delete(key)
    return client


def test_healthz_needs_no_key_and_reports_database_and_redis(anon_api, redis_client):
    response = anon_api.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["database"]["ok"] is True
    assert body["database"]["pgvector"]  # the extension is installed
    assert body["redis"] == {"ok": True}
    assert body["workers"] == {"ok": False, "count": 0, "alive": []}
    assert body["status"] == "degraded"


def test_healthz_says_redis_is_down_and_still_answers_200(anon_api, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    response = anon_api.get("/healthz")
    assert response.status_code == 200  # ingestion and serving still work without Redis
    body = response.json()
    assert body["redis"]["ok"] is False and body["redis"]["error"]
    assert body["database"]["ok"] is True
    assert body["status"] == "degraded"


def test_healthz_answers_503_when_the_database_is_unreachable(anon_api, monkeypatch):
    from recsys_project import health

    class Unreachable:
        def __enter__(self):
            raise OSError("connection refused")

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(health.connection, "cursor", lambda: Unreachable())
    response = anon_api.get("/healthz")
    assert response.status_code == 503
    assert response.json()["status"] == "down"
    assert response.json()["database"] == {"ok": False, "error": "connection refused"}


def test_healthz_counts_a_heartbeat_as_a_live_worker(anon_api, redis_client):
    redis_client.set(
        WORKER_HEARTBEAT_KEY + "w1@host",
        json.dumps({"hostname": "w1@host", "pid": 1, "at": time.time()}),
        ex=15,
    )
    body = anon_api.get("/healthz").json()
    assert body["workers"]["count"] == 1
    assert body["workers"]["alive"][0]["hostname"] == "w1@host"
    assert body["status"] == "ok"


def test_healthz_rejects_writes(anon_api):
    assert anon_api.post("/healthz").status_code == 405


@pytest.mark.slow
def test_healthz_sees_a_real_celery_worker_and_notices_when_it_is_gone(anon_api, redis_client):
    env = {**os.environ, "REDIS_URL": settings.REDIS_URL, "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    hostname = f"healthz-test-{os.getpid()}@localhost"
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "recsys_project", "worker", "--pool", "solo",
         "--queues", f"healthz-test-{os.getpid()}", "--hostname", hostname, "--without-gossip",
         "--without-mingle", "--loglevel", "WARNING"],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        alive = []
        while time.monotonic() < deadline and not alive:
            assert worker.poll() is None, worker.stderr.read()
            alive = [w["hostname"] for w in anon_api.get("/healthz").json()["workers"]["alive"]]
            time.sleep(0.5)
        assert hostname in alive
        assert anon_api.get("/healthz").json()["status"] == "ok"
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
    # the heartbeat has a short TTL; once it lapses the worker is no longer counted
    redis_client.expire(WORKER_HEARTBEAT_KEY + hostname, 1)
    time.sleep(1.5)
    assert anon_api.get("/healthz").json()["workers"]["count"] == 0

from __future__ import annotations

import json
import os
import time

import pytest
import redis
from django.conf import settings

from core.heartbeat import WORKER_HEARTBEAT_TTL, worker_heartbeat_prefix
from core.processes import Process, start_celery_worker

pytestmark = pytest.mark.django_db


@pytest.fixture
def redis_client():
    client = redis.Redis.from_url(settings.REDIS_URL)
    for key in client.scan_iter(match=worker_heartbeat_prefix() + "*"):
        client.delete(key)
    return client


def test_healthz_needs_no_key_and_reports_database_and_redis(anon_api, redis_client):
    response = anon_api.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["database"]["ok"] is True
    assert body["database"]["pgvector"]  # the extension is installed
    assert body["redis"] == {"ok": True}
    assert body["workers"] == {
        "ok": False,
        "count": 0,
        "alive": [],
        "gone_after_seconds": WORKER_HEARTBEAT_TTL,
    }
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
    from core import health

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


def test_healthz_counts_a_heartbeat_as_a_live_worker_and_says_how_old_it_is(anon_api, redis_client):
    redis_client.set(
        worker_heartbeat_prefix() + "w1@host",
        json.dumps({"hostname": "w1@host", "pid": 1, "at": time.time()}),
        px=WORKER_HEARTBEAT_TTL * 1000 - 2500,  # written 2.5 s ago
    )
    body = anon_api.get("/healthz").json()
    assert body["workers"]["count"] == 1
    (worker,) = body["workers"]["alive"]
    assert worker["hostname"] == "w1@host"
    assert 2.5 <= worker["heartbeat_age_seconds"] <= 3.5
    assert body["status"] == "ok"


def test_healthz_lists_only_the_workers_of_its_own_instance(anon_api, redis_client):
    other = "recsys:another-copy:worker:w2@host"
    redis_client.set(other, json.dumps({"hostname": "w2@host", "pid": 2, "at": time.time()}), ex=60)
    redis_client.set(  # the key a worker of any copy wrote before instances existed
        "recsys:worker:w3@host", json.dumps({"hostname": "w3@host", "pid": 3, "at": time.time()}), ex=60
    )
    try:
        assert anon_api.get("/healthz").json()["workers"]["alive"] == []
    finally:
        redis_client.delete(other, "recsys:worker:w3@host")


def test_healthz_rejects_writes(anon_api):
    assert anon_api.post("/healthz").status_code == 405


def _start_worker(hostname: str) -> Process:
    env = {**os.environ, "REDIS_URL": settings.REDIS_URL, "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return start_celery_worker(
        queues=[f"healthz-test-{os.getpid()}"], hostname=hostname, loglevel="WARNING", env=env, pipe=True,
        extra=["--pool", "solo", "--without-gossip", "--without-mingle"],
    )  # fmt: skip


def _alive(anon_api) -> list[str]:
    return [w["hostname"] for w in anon_api.get("/healthz").json()["workers"]["alive"]]


def _wait_until_listed(anon_api, worker: Process, hostname: str) -> None:
    deadline = time.monotonic() + 90
    while hostname not in _alive(anon_api):
        assert worker.poll() is None, worker.stdout.read()
        assert time.monotonic() < deadline, "the worker never appeared in /healthz"
        time.sleep(0.2)


@pytest.mark.slow
def test_healthz_sees_a_real_celery_worker_and_forgets_it_as_soon_as_it_stops(anon_api, redis_client):
    hostname = f"healthz-test-{os.getpid()}@localhost"
    worker = _start_worker(hostname)
    try:
        _wait_until_listed(anon_api, worker, hostname)
        assert anon_api.get("/healthz").json()["status"] == "ok"
    finally:
        worker.stop(grace=30)
    # A clean stop removes the heartbeat: no waiting for its TTL.
    assert _alive(anon_api) == []


@pytest.mark.slow
def test_healthz_drops_a_killed_worker_within_the_heartbeat_ttl(anon_api, redis_client):
    hostname = f"healthz-kill-{os.getpid()}@localhost"
    worker = _start_worker(hostname)
    try:
        _wait_until_listed(anon_api, worker, hostname)
        (entry,) = anon_api.get("/healthz").json()["workers"]["alive"]
        assert 0 <= entry["heartbeat_age_seconds"] <= WORKER_HEARTBEAT_TTL
        worker.kill()  # no clean shutdown: only the heartbeat's TTL can tell
        worker.wait()
        killed_at = time.monotonic()
        while hostname in _alive(anon_api):
            time.sleep(0.1)
        gone_after = time.monotonic() - killed_at
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    # The bound /healthz states (workers.gone_after_seconds), plus the polling step. It is a TTL that Redis
    # enforces, not a speed: load on this machine cannot stretch it.
    assert gone_after <= WORKER_HEARTBEAT_TTL + 0.5, f"listed {gone_after:.1f} s after it was killed"

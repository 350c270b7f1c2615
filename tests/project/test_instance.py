"""Two copies of recsys on one Redis (core/instance.py): each has its own queues, cache keys and
workers in /healthz."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

import dj_database_url
import pytest
import redis
from celery import Celery
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured

from core.instance import instance_id, redis_key_prefix
from core.processes import REPO, start_celery_worker
from recsys_project.celery import app

WORKER_START_SECONDS = 180  # a cold start of Django + Celery on 2 busy cores; not a speed assertion


def embedded(data_dir: str) -> dict:
    return {"HOST": f"{data_dir}/pg", "NAME": "recsys"}


def test_copies_with_their_own_data_dirs_are_different_instances(monkeypatch):
    monkeypatch.delenv("RECSYS_INSTANCE", raising=False)
    assert instance_id(database=embedded("/srv/a/var")) != instance_id(database=embedded("/srv/b/var"))
    assert instance_id(database=embedded("/srv/a/var")) == instance_id(database=embedded("/srv/a/var"))


def test_processes_sharing_a_database_share_an_instance_whatever_their_credentials(monkeypatch):
    monkeypatch.delenv("RECSYS_INSTANCE", raising=False)
    web = dj_database_url.parse("postgres://web:secret@db.internal:5432/shop")
    worker = dj_database_url.parse("postgres://worker:password@db.internal:5432/shop")
    other_shop = dj_database_url.parse("postgres://web:secret@db.internal:5432/shop2")
    assert instance_id(database=web) == instance_id(database=worker)
    assert instance_id(database=web) != instance_id(database=other_shop)


def test_recsys_instance_names_the_instance_and_must_be_a_plain_name(monkeypatch):
    monkeypatch.setenv("RECSYS_INSTANCE", "shop-eu.2")
    assert instance_id(database=embedded("/srv/a/var")) == "shop-eu.2"
    monkeypatch.setenv("RECSYS_INSTANCE", "a b*")
    with pytest.raises(ImproperlyConfigured, match="RECSYS_INSTANCE"):
        instance_id(database=embedded("/srv/a/var"))


def test_every_redis_key_of_the_settings_is_scoped_to_the_instance():
    prefix = redis_key_prefix(settings.RECSYS_INSTANCE)
    assert settings.RECSYS_REDIS_PREFIX == prefix
    assert settings.CELERY_BROKER_TRANSPORT_OPTIONS["global_keyprefix"] == prefix
    assert settings.CACHES["default"]["KEY_PREFIX"] + ":" == prefix


def other_instance_env(name: str) -> dict[str, str]:
    """The environment of another copy of recsys on this test run's Redis database."""
    env = {**os.environ, "RECSYS_INSTANCE": name, "REDIS_URL": settings.REDIS_URL, "HF_HUB_OFFLINE": "1"}
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return env


@pytest.mark.slow
def test_two_instances_on_one_redis_do_not_share_cache_keys():
    key = f"instance-test-{uuid.uuid4().hex}"
    cache.set(key, "ours", 60)
    try:
        other = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c",
             "from django.core.cache import cache; "
             f"print(repr(cache.get({key!r}))); cache.set({key!r}, 'theirs', 60)"],
            cwd=REPO, env=other_instance_env(f"other-{os.getpid()}"), capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert other.returncode == 0, other.stderr
        assert other.stdout.strip().splitlines()[-1] == "None"  # it cannot read ours...
        assert cache.get(key) == "ours"  # ...nor overwrite it
    finally:
        cache.delete(key)


@pytest.mark.slow
@pytest.mark.django_db
def test_a_task_sent_by_one_instance_is_never_consumed_by_another_instances_worker(tmp_path, client):
    other = f"other-{os.getpid()}"
    hostname = f"other-{os.getpid()}@localhost"
    log_path = tmp_path / "other-worker.log"
    worker = start_celery_worker(
        queues=["default"], hostname=hostname, env=other_instance_env(other), log=log_path,
        extra=["--pool", "solo", "--without-gossip", "--without-mingle"],
    )  # fmt: skip
    ours = theirs = None
    client_redis = redis.Redis.from_url(settings.REDIS_URL)
    try:
        deadline = time.monotonic() + WORKER_START_SECONDS
        while " ready." not in log_path.read_text():
            assert worker.poll() is None and time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)
        # /healthz of this instance does not list the other instance's worker.
        assert client.get("/healthz").json()["workers"]["alive"] == []

        # Ours is queued first, then theirs, on the queue both call `default`: had they shared it, their
        # worker would take ours first (FIFO).
        ours = app.send_task("celery.accumulate", args=[1], queue="default").id
        # Not the current app: tasks of later tests must still go through ours.
        their_app = Celery("other", broker=settings.REDIS_URL, set_as_current=False)
        their_app.conf.broker_transport_options = {
            **settings.CELERY_BROKER_TRANSPORT_OPTIONS,
            "global_keyprefix": redis_key_prefix(other),
        }
        theirs = their_app.send_task("celery.accumulate", args=[2], queue="default").id
        deadline = time.monotonic() + WORKER_START_SECONDS
        while f"[{theirs}] received" not in log_path.read_text():
            assert worker.poll() is None and time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)
        assert ours not in log_path.read_text()
        assert client_redis.llen(settings.RECSYS_REDIS_PREFIX + "default") == 1  # waits for our own worker
    finally:
        worker.stop(grace=30)
        client_redis.delete(settings.RECSYS_REDIS_PREFIX + "default")

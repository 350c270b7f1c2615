"""The Celery app. Queues, by kind of work, so that a deployment can give each its own machines
(docs/deploy.md): `embeddings` (item embedding: CPU-heavy), `default` (user vectors, co-visitation folds),
`maintenance` (sweeps, index rebuilds, the pre-computed candidate lists), `training` (the two-tower model and the ranker: minutes of CPU and
GBs of memory) and `analytics` (attribution, metric rollups, retention). One worker with `-Q` naming all of
QUEUES (what `manage.py demo` starts) does everything.

In Redis they are this instance's own: the broker prefixes every key and channel with
`recsys:<instance>:` (settings.CELERY_BROKER_TRANSPORT_OPTIONS), so `-Q default` names the same queue for
every process of one instance and never another instance's."""

from __future__ import annotations

import json
import os
import socket
import threading
import time

from celery import Celery, bootsteps, signals
from kombu import Queue

from core import beat_lock, embedded
from core.heartbeat import WORKER_HEARTBEAT_SECONDS, WORKER_HEARTBEAT_TTL, worker_heartbeat_prefix

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "recsys_project.settings")

app = Celery("recsys_project")
app.config_from_object("django.conf:settings", namespace="CELERY")
QUEUES = ("default", "embeddings", "maintenance", "training", "analytics")
app.conf.task_queues = tuple(Queue(name) for name in QUEUES)
# First match wins (in this order).
app.conf.task_routes = {
    "recommendations.tasks.two_tower_train_maintenance_task": {"queue": "training"},
    # a cache (a stale list is a miss, served live): its backlog must never delay the user vectors on
    # `default` (under the Jepsen ingest it left hundreds of tasks there after the sweeps)
    "recommendations.tasks.candidate_lists_refresh_task": {"queue": "maintenance"},
    "analytics.tasks.*": {"queue": "analytics"},
    "catalog.tasks.*": {"queue": "embeddings"},
    "*.tasks.*_sweep_task": {"queue": "maintenance"},
    "*.tasks.*_maintenance_task": {"queue": "maintenance"},
}
app.autodiscover_tasks()


class WorkerHeartbeat(bootsteps.StartStopStep):
    """Writes `recsys:<instance>:worker:<hostname>` to Redis every few seconds with a short TTL, so that
    /healthz can tell whether workers are alive with one Redis read instead of a broadcast ping.

    It beats from its own thread, not the worker's timer: a solo-pool worker busy with a long task (a
    training run) is alive, and its event loop is not running the timer meanwhile."""

    def __init__(self, worker, **kwargs):
        super().__init__(worker, **kwargs)
        self.thread: threading.Thread | None = None
        self.stopping = threading.Event()

    def start(self, worker):
        import redis
        from django.conf import settings

        hostname = worker.hostname or socket.gethostname()
        self.key = worker_heartbeat_prefix() + hostname
        self.payload = {"hostname": hostname, "pid": os.getpid()}
        self.client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=0.5, socket_connect_timeout=0.5)
        self.stopping.clear()
        self.beat()
        self.thread = threading.Thread(target=self.run, name="recsys-heartbeat", daemon=True)
        self.thread.start()

    def run(self):
        while not self.stopping.wait(WORKER_HEARTBEAT_SECONDS):
            self.beat()

    def stop(self, worker):
        if self.thread is None:
            return
        self.stopping.set()
        self.thread.join(timeout=2)
        self.thread = None
        try:
            self.client.delete(self.key)
        except Exception:  # noqa: BLE001 - Redis down: the heartbeat expires by itself
            pass

    shutdown = stop

    def beat(self):
        try:
            payload = json.dumps({**self.payload, "at": time.time()})
            self.client.set(self.key, payload, ex=WORKER_HEARTBEAT_TTL)
        except Exception:  # noqa: BLE001 - Redis down: healthz will say so itself
            pass


app.steps["worker"].add(WorkerHeartbeat)


def embedded_servers_start(sender=None, **kwargs) -> None:
    """A worker and a beat are entry points: they start the embedded servers the settings point at, if not
    running (core/embedded.py), before they connect to Redis or take the beat lock. Not at import: importing
    the settings imports this module (recsys_project/__init__.py). Celery logs an exception raised here and
    carries on, as with a database that is down."""
    embedded.ensure_started()


signals.worker_init.connect(embedded_servers_start, weak=False)
# Before the beat lock, which is taken in PostgreSQL (receivers run in the order they were connected).
signals.beat_init.connect(embedded_servers_start, weak=False)
# Beat runs once: a beat schedules only while it holds the beat lock (core/beat_lock.py).
signals.beat_init.connect(beat_lock.beat_lock_wait, weak=False)

from recsys_project import schedule  # noqa: E402  (the one beat schedule)

app.conf.beat_schedule = schedule.BEAT_SCHEDULE

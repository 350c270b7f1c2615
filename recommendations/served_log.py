"""The served-list log off the request path: a request hands its row to an in-process buffer and returns;
a background thread writes the buffer in batches (one pipelined multi-row INSERT per batch, ~1 ms for 100
rows here against ~5 ms for a single-row INSERT on the request path of a busy machine).

Delivery:
- A row is written at most RECSYS_SERVED_LOG_FLUSH_SECONDS after its answer in the steady state, later
  while Postgres is unreachable (the rows wait in memory, up to SERVED_LOG_MAX_PENDING).
- Normal shutdown loses nothing: the buffer is flushed at interpreter exit (atexit), which a gunicorn worker
  reaches on SIGTERM, SIGINT and SIGQUIT, and a plain process reaches on SIGTERM through the handler
  installed here when nobody else handles that signal.
- kill -9 (or an OOM kill) loses what is in the buffer: at most one flush interval of answers of that
  process (docs/serving-speed.md measures it). Attribution waits RECSYS_SERVED_LOG_GRACE_SECONDS for a
  late row before it calls a recommendation_id unknown (analytics/attribution.py).
- Writes are idempotent (ON CONFLICT DO NOTHING on the recommendation_id), so a batch retried after an
  ambiguous failure does not fail on its own first half; a row Postgres rejects is logged and dropped, the
  rest of its batch is written.

Redis is not involved: serving with Redis down logs as usual. With RECSYS_SERVED_LOG_BUFFERED off (the
test suite, whose tests run inside a transaction) the row is written at once, by the caller's connection.
"""

from __future__ import annotations

import atexit
import functools
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, connection, transaction

logger = logging.getLogger(__name__)

# Rows per INSERT: 500 ten-item lists are ~0.5 MB of parameters and take ~15 ms pipelined (embedded
# Postgres, 2 shared cores); a serving process rarely has more than that per flush interval.
SERVED_LOG_BATCH = 500
# While Postgres is unreachable the buffer keeps at most this many rows (~100 MB of ten-item lists), then
# drops the oldest with an error in the log: serving does not stop because the log cannot be written.
SERVED_LOG_MAX_PENDING = 100_000
# How long shutdown waits for the flusher thread to finish a batch in flight before flushing itself.
SHUTDOWN_JOIN_SECONDS = 5.0
# After a failed write, the flusher waits this long before retrying (Postgres restarting, say).
RETRY_SECONDS = 1.0

TABLE = "recommendations_servedlist"


def _insert_sql(columns: Sequence[str]) -> str:
    quoted = ", ".join(connection.ops.quote_name(c) for c in columns)
    values = ", ".join(f"%({c})s" for c in columns)
    return f"INSERT INTO {TABLE} ({quoted}) VALUES ({values}) ON CONFLICT (recommendation_id) DO NOTHING"


@functools.cache
def _column_defaults() -> dict[str, Any]:
    """ServedList's columns with a model default (callables called at each use, below): a row that
    leaves one out still gets a value, as Model.save() would give it (the columns have no database
    default, and NOT NULL would drop the row)."""
    from recommendations.models import ServedList

    return {f.column: f for f in ServedList._meta.concrete_fields if f.has_default()}


def _complete(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        **{column: field.get_default() for column, field in _column_defaults().items() if column not in row},
        **row,
    }


def served_row_write_now(*, row: Mapping[str, Any]) -> None:
    """One row in one round trip of the caller's connection (the unbuffered path), not waiting for the
    WAL flush either."""
    row = _complete(row)
    sql = f"SET LOCAL synchronous_commit = off; {_insert_sql(tuple(row))}; SET LOCAL synchronous_commit TO DEFAULT"
    with connection.cursor() as cur:
        cur.execute(sql, row)


def served_rows_write(*, rows: Sequence[Mapping[str, Any]]) -> int:
    """Writes rows (dicts of column -> value, any set of the table's columns; the others get their model
    default) with one pipelined INSERT
    per set of columns, in the current connection, without waiting for the WAL flush (a crash of Postgres
    may lose its last few hundred milliseconds of log, never corrupt it). Returns the rows inserted.

    A batch Postgres rejects is redone row by row, each in its own savepoint; rejected rows are logged and
    dropped. Connection errors are raised (the caller keeps the rows and retries)."""
    if not rows:
        return 0
    by_columns: dict[tuple[str, ...], list[Mapping[str, Any]]] = {}
    for row in map(_complete, rows):
        by_columns.setdefault(tuple(row), []).append(row)
    written = 0
    for columns, group in by_columns.items():
        sql = _insert_sql(columns)
        try:
            with transaction.atomic(), connection.cursor() as cur:
                cur.execute("SET LOCAL synchronous_commit = off")
                cur.executemany(sql, group)
                cur.execute("SET LOCAL synchronous_commit TO DEFAULT")
            written += len(group)
        except (OperationalError, InterfaceError):
            raise
        except DatabaseError as exc:
            logger.warning("served-list batch of %d rejected (%s); writing it row by row", len(group), exc)
            written += _rows_one_by_one(sql, group)
    return written


def _rows_one_by_one(sql: str, rows: Sequence[Mapping[str, Any]]) -> int:
    written = 0
    for row in rows:
        try:
            with transaction.atomic(), connection.cursor() as cur:
                cur.execute(sql, row)
            written += 1
        except (OperationalError, InterfaceError):
            raise
        except DatabaseError as exc:
            logger.error(
                "served list %s dropped, Postgres rejected it: %s", row.get("recommendation_id"), exc
            )
    return written


class ServedLogBuffer:
    """Rows waiting for the flusher thread, which a process starts on its first row (so a forked gunicorn
    worker gets its own, and a process that serves nothing has none)."""

    def __init__(self, *, flush_seconds: float) -> None:
        self.flush_seconds = flush_seconds
        self._lock = threading.Lock()
        self._rows: list[dict[str, Any]] = []
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.dropped = 0
        self.added = 0

    def add(self, row: dict[str, Any]) -> None:
        with self._lock:
            self._rows.append(row)
            self.added += 1
            if len(self._rows) > SERVED_LOG_MAX_PENDING:
                del self._rows[0]
                self.dropped += 1
                if self.dropped == 1 or self.dropped % 1000 == 0:
                    logger.error(
                        "served-list buffer full (Postgres unreachable?): %d rows dropped", self.dropped
                    )
            full = len(self._rows) >= SERVED_LOG_BATCH
            if self._thread is None and not self._stopping.is_set():
                self._thread = threading.Thread(target=self._run, name="served-log-flusher", daemon=True)
                self._thread.start()
        if full:
            self._wake.set()

    def pending(self) -> int:
        with self._lock:
            return len(self._rows)

    def flush(self) -> int:
        """Writes everything buffered, in batches, with this thread's connection. Returns the rows written.
        On a connection error the unwritten rows go back to the front of the buffer and the error is
        raised."""
        written = 0
        while True:
            with self._lock:
                batch, self._rows = self._rows[:SERVED_LOG_BATCH], self._rows[SERVED_LOG_BATCH:]
            if not batch:
                return written
            try:
                written += served_rows_write(rows=batch)
            except Exception:
                with self._lock:
                    self._rows[:0] = batch
                raise

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            if self._stopping.is_set():
                break
            try:
                self.flush()
            except Exception as exc:  # noqa: BLE001 - the thread must outlive a Postgres restart
                logger.warning("served-list flush failed, retrying in %.0f s: %s", RETRY_SECONDS, exc)
                connection.close()  # a broken connection is reopened by the next attempt
                self._stopping.wait(RETRY_SECONDS)
        connection.close()

    def stop(self) -> int:
        """Shutdown: stops the flusher thread, then writes what is left from the calling thread. Returns
        the rows written by this call. Idempotent."""
        self._stopping.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(SHUTDOWN_JOIN_SECONDS)
        try:
            written = self.flush()
        except Exception as exc:  # noqa: BLE001 - at exit there is no one left to raise to
            logger.error("served-list log: %d rows not written at shutdown: %s", self.pending(), exc)
            return 0
        finally:
            # the shutdown flush opened a connection of its own (atexit runs in the main thread)
            connection.close()
        return written


_buffer: ServedLogBuffer | None = None
_buffer_lock = threading.Lock()


def served_log_buffer() -> ServedLogBuffer:
    """This process's buffer, created (with its exit hooks) on first use."""
    global _buffer
    with _buffer_lock:
        if _buffer is None:
            _buffer = ServedLogBuffer(flush_seconds=settings.RECSYS_SERVED_LOG_FLUSH_SECONDS)
            _hooks_install()
        return _buffer


def served_log_flush() -> int:
    """Shutdown path (atexit, the SIGTERM handler): flush and stop this process's buffer."""
    return _buffer.stop() if _buffer is not None else 0


def _after_fork_in_child() -> None:
    # A fork (gunicorn without --preload forks before serving; with it, after importing) copies the parent's
    # rows, which the parent writes, and not its thread: the child starts empty.
    global _buffer
    _buffer = None


_hooks_installed = False


def _hooks_install() -> None:
    global _hooks_installed
    if _hooks_installed:
        return
    _hooks_installed = True
    atexit.register(served_log_flush)
    # A process nobody installed a SIGTERM handler for (a script, `manage.py shell`) would die without
    # running atexit. gunicorn workers and Celery install their own handlers, which exit through atexit.
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) in (
        signal.SIG_DFL,
        None,
    ):
        signal.signal(signal.SIGTERM, _on_sigterm)


def _on_sigterm(signum: int, frame: object) -> None:
    served_log_flush()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


os.register_at_fork(after_in_child=_after_fork_in_child)


# The rows logged inside `served_log_timed()` in this thread (or task), held until its end; None outside.
_held: ContextVar[list[dict[str, Any]] | None] = ContextVar("served_log_held", default=None)


@contextmanager
def served_log_timed() -> Iterator[None]:
    """Serving one request (a view, as a decorator or a `with`): the rows logged inside are held to the end
    of the block, then logged with `latency_ms`, the block's wall time in milliseconds, read just before
    they are handed to the log (so it counts everything the visitor waited for but the hand-off). Rows are
    logged even when the block raises, as they would have been without it."""
    held: list[dict[str, Any]] = []
    token = _held.set(held)
    started = time.perf_counter()
    try:
        yield
    finally:
        latency_ms = (time.perf_counter() - started) * 1000
        _held.reset(token)
        for row in held:
            _row_log({**row, "latency_ms": latency_ms})


def served_row_log(*, row: dict[str, Any]) -> None:
    """Hands one served-list row to the log: buffered (written within a flush interval) or, with
    RECSYS_SERVED_LOG_BUFFERED off, written now; inside `served_log_timed()`, at the end of its block, with
    the serve time. Columns left out get their model default when written."""
    held = _held.get()
    if held is not None:
        held.append(row)
    else:
        _row_log(row)


def _row_log(row: dict[str, Any]) -> None:
    if settings.RECSYS_SERVED_LOG_BUFFERED:
        served_log_buffer().add(row)
    else:
        served_row_write_now(row=row)


def served_log_flush_now() -> int:
    """Writes this process's buffered rows now, from the calling thread (and its transaction)."""
    return _buffer.flush() if _buffer is not None else 0

"""The served-list log off the request path (recommendations/served_log.py): answers are buffered, the
flusher thread writes them in batches, the shutdown path writes what is left, a bad row does not stop its
batch. Transactional tests: the flusher's connection must see the committed catalog, and the rows it writes
are counted from another connection. (A real gunicorn stopped by SIGTERM, and Redis down:
tests/reliability/test_served_log_processes.py.)"""

from __future__ import annotations

import time
import uuid

import psycopg
import pytest
from django.db import InterfaceError, OperationalError, connection
from django.utils import timezone
from psycopg.types.json import Jsonb

from recommendations import served_log
from recommendations.models import ServedList
from tests.factories import ItemFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def catalog():
    for i in range(8):
        ItemFactory(external_id=f"it-{i}")


@pytest.fixture
def buffer(settings, monkeypatch):
    """This process's buffer, fresh, with a flush interval far longer than any test."""
    settings.RECSYS_SERVED_LOG_BUFFERED = True
    buf = served_log.ServedLogBuffer(flush_seconds=3600)
    monkeypatch.setattr(served_log, "_buffer", buf)
    yield buf
    buf.stop()


def _serve(api, n: int) -> dict[str, list[str]]:
    """recommendation_id -> the item ids served, of n answers."""
    answers = {}
    for _ in range(n):
        response = api.get("/api/v1/recommendations/trending", {"limit": 3})
        assert response.status_code == 200
        body = response.json()
        answers[body["recommendation_id"]] = [item["id"] for item in body["items"]]
    return answers


def _logged() -> set[str]:
    return {str(pk) for pk in ServedList.objects.values_list("recommendation_id", flat=True)}


def test_answers_are_buffered_then_all_written_by_the_shutdown_path(api, catalog, buffer):
    served = _serve(api, 12)
    assert _logged() == set()  # acknowledged, not yet written: the request did not wait for the INSERT
    assert buffer.pending() == 12
    assert served_log.served_log_flush() == 12  # what atexit and the SIGTERM handler call
    assert _logged() == set(served)
    assert buffer.pending() == 0


def test_flusher_thread_writes_within_its_interval(api, catalog, buffer):
    buffer.flush_seconds = 0.2
    served = _serve(api, 5)
    deadline = time.monotonic() + 10
    while _logged() != set(served) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _logged() == set(served)
    for rec_id, item_ids in served.items():
        row = ServedList.objects.get(recommendation_id=rec_id)
        assert (row.scenario, row.item_ids) == ("trending", item_ids)


def test_a_full_batch_wakes_the_flusher_before_its_interval(api, catalog, buffer, monkeypatch):
    monkeypatch.setattr(served_log, "SERVED_LOG_BATCH", 4)
    served = _serve(api, 4)
    deadline = time.monotonic() + 10
    while _logged() != set(served) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _logged() == set(served)  # the interval is an hour


def _row(**overrides) -> dict:
    now = timezone.now()
    return {
        "recommendation_id": uuid.uuid4(),
        "user_id": "u1",
        "session_id": "",
        "surface": "home",
        "scenario": "user",
        "profile_surface": "",
        "profile_version": 0,
        "model_version": "m",
        "backend": "pgvector",
        "item_pks": [1, 2],
        "item_ids": ["a", "b"],
        "scores": [0.5, 0.25],
        "reasons": Jsonb([{"signal": "x"}, {}]),
        "created_at": now,
        "updated_at": now,
        **overrides,
    }


def test_a_row_postgres_rejects_is_dropped_and_the_rest_of_its_batch_written():
    good = [_row() for _ in range(3)]
    bad = _row(surface="x" * 500)  # longer than the column
    assert served_log.served_rows_write(rows=[good[0], bad, good[1], good[2]]) == 3
    assert _logged() == {str(r["recommendation_id"]) for r in good}


def test_a_batch_written_twice_is_written_once():
    rows = [_row() for _ in range(3)]
    assert served_log.served_rows_write(rows=rows) == 3
    served_log.served_rows_write(rows=rows)  # a retry after an ambiguous failure
    assert ServedList.objects.count() == 3


def test_the_served_time_is_kept_however_late_the_row_is_written(buffer):
    served_at = timezone.now() - timezone.timedelta(minutes=5)
    row = _row(created_at=served_at, updated_at=served_at)
    buffer.add(row)
    served_log.served_log_flush()
    assert ServedList.objects.get(recommendation_id=row["recommendation_id"]).created_at == served_at


def test_rows_survive_a_broken_connection_and_are_written_by_the_retry(buffer):
    rows = [_row() for _ in range(3)]
    for row in rows:
        buffer.add(row)
    connection.ensure_connection()
    with connection.cursor() as cur:  # what a Postgres restart does to a pooled connection
        cur.execute("SELECT pg_backend_pid()")
        pid = cur.fetchone()[0]
    with psycopg.connect(**connection.get_connection_params(), autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", (pid,))
    with pytest.raises((OperationalError, InterfaceError)):
        buffer.flush()
    assert buffer.pending() == 3  # back in the buffer, in order
    connection.close()
    assert buffer.flush() == 3
    assert _logged() == {str(r["recommendation_id"]) for r in rows}


def test_erasing_a_user_erases_their_lists_still_in_this_process_buffer(api, catalog, buffer):
    served = _serve(api, 2)
    response = api.get("/api/v1/recommendations/users/u-erased")  # cold start: served all the same
    assert response.status_code == 200
    assert buffer.pending() == 3
    assert api.delete("/api/v1/users/u-erased").status_code == 200
    served_log.served_log_flush()
    assert _logged() == set(served)  # the anonymous trending lists stay, the user's is gone


def test_a_row_logged_in_a_timed_block_is_held_to_its_end_and_carries_its_wall_time(buffer):
    row = _row()
    with served_log.served_log_timed():
        served_log.served_row_log(row=row)
        assert buffer.pending() == 0  # held: the block (the view) is not over
        time.sleep(0.05)  # the rest of the request: rendering, say
    assert buffer.pending() == 1
    untimed = _row()  # logged outside any block, e.g. before serve times were recorded
    served_log.served_row_log(row=untimed)
    served_log.served_log_flush()  # one batch: the row without latency_ms gets the model default
    latency = ServedList.objects.get(recommendation_id=row["recommendation_id"]).latency_ms
    assert latency >= 50.0  # milliseconds, up to the end of the block
    assert ServedList.objects.get(recommendation_id=untimed["recommendation_id"]).latency_ms is None


def test_api_answers_are_logged_through_the_buffer_with_their_serve_time(api, catalog, buffer):
    started = time.perf_counter()
    served = _serve(api, 3)
    waited_ms = (time.perf_counter() - started) * 1000
    served_log.served_log_flush()
    latencies = dict(ServedList.objects.values_list("recommendation_id", "latency_ms"))
    assert {str(k) for k in latencies} == set(served)
    assert all(0 < ms < waited_ms for ms in latencies.values()), latencies

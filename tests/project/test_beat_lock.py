"""core/beat_lock.py: a second beat, here or on another machine, gets no lock (and schedules
nothing) while the first one's session lives. tests/cluster runs two real beats on two hosts."""

from __future__ import annotations

import time

import pytest
from django.db import connections

from core.beat_lock import BEAT_LOCK_KEY, beat_lock_try


def _lock_holders() -> int:
    with connections["default"].cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND classid = %s AND objid = %s",
            [BEAT_LOCK_KEY >> 32, BEAT_LOCK_KEY & 0xFFFFFFFF],
        )
        return cur.fetchone()[0]


def _eventually(check, seconds: float = 10.0):
    """A closed session's backend exits (and drops its locks) a moment after the client hangs up: poll, as
    the standby beat does."""
    deadline = time.monotonic() + seconds
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.05)


@pytest.mark.django_db(transaction=True)
def test_a_second_beat_gets_no_lock_until_the_first_ones_session_ends():
    first = beat_lock_try()
    assert first is not None
    try:
        assert _lock_holders() == 1
        assert beat_lock_try() is None  # a second beat: stands by
        assert _lock_holders() == 1
    finally:
        first.close()  # the first beat stopped or died: its session, and the lock, are gone
    second = _eventually(beat_lock_try)
    try:
        assert second is not None  # the standby takes over
        assert _lock_holders() == 1
    finally:
        second.close()
    assert _eventually(lambda: _lock_holders() == 0)

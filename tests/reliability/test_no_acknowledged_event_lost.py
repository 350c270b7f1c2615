"""The reduced Jepsen run (tests/reliability/cluster.py, as bench/jepsen_ingest.py runs it; 8 s per fault): clients send events while a gunicorn
worker, the whole gunicorn, the Celery worker (mid-batch), Redis and PostgreSQL are kill -9'ed in turn.
Every acknowledged event must be stored exactly once and the vectors must catch up."""

from __future__ import annotations

import pytest

from tests.reliability.cluster import print_report, run

pytestmark = pytest.mark.slow


def test_every_acknowledged_event_is_stored_exactly_once_under_kill_9_of_each_part():
    report = run(phase_seconds=8, clients=2, batch=20)
    print_report(report)
    for phase, row in report["phases"].items():
        assert row["acknowledged"] > 0, f"{phase}: no batch was acknowledged at all"
        assert row["lost"] == 0, f"{phase}: {row['lost']} acknowledged events are not in the database"
        assert row["duplicated"] == 0, f"{phase}: {row['duplicated']} events stored twice"
        assert row["stored"] <= row["sent"]
    assert report["phases"]["web"]["kills"] > 0 and report["phases"]["postgres"]["kills"] > 0
    assert report["caught_up"] == {"dirty_items": 0, "pending_events": 0, "users_without_vector": 0}
    assert report["unlinked"] == 0, "events whose item exists were left unlinked"
    assert report["queued"]["default"] == report["queued"]["embeddings"] == 0, "tasks left in a queue"

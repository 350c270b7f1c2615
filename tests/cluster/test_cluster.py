"""The deployment past one machine, as a real cluster on this machine (tests/cluster/cluster.py): network namespaces
joined by veth pairs, a primary PostgreSQL and a streaming replica (pg_basebackup), Redis, two gunicorn web
nodes behind a spreading client, and a Celery worker node. Traffic runs while a web node is killed, then the
replica, then the worker is stopped and brought back.

Marked `cluster`: `make test` deselects it, `make test-cluster` runs it (needs root for `ip netns`; skips
with the reason where namespaces cannot be made)."""

from __future__ import annotations

import pytest

from tests.cluster import cluster

pytestmark = pytest.mark.cluster


def test_serving_and_ingestion_survive_losing_a_web_node_the_replica_and_the_worker():
    reason = cluster.namespaces_unavailable()
    if reason:
        pytest.skip(f"cannot build network namespaces here: {reason}")
    report = cluster.run(phase_seconds=12, clients=3)
    cluster.print_report(report)
    phases = report["phases"]
    assert report["initial"]["dirty_items"] == 0, "the worker node never embedded the catalog"
    for name, row in phases.items():
        assert row["requests"] > 20, f"{name}: too few requests to mean anything ({row['requests']})"
        assert row["errors"] == 0, f"{name}: {row['errors']} requests failed: {row['error_samples']}"
        assert row["events_acknowledged"] > 0, f"{name}: no event batch was acknowledged"
        assert row["events_lost"] == 0, f"{name}: {row['events_lost']} acknowledged events are not stored"
        assert row["events_duplicated"] == 0, f"{name}: events stored twice"
    # both nodes took traffic, then web1 was gone: its share went to web2
    assert phases["one_web"]["failovers"] > 0
    # the replica served while it was up (the primary ran fewer transactions per request), and once it was
    # killed the primary served everything without an error
    assert report["healthz_both"]["replicas"]["ok"] is True
    assert report["healthz_primary"]["replicas"]["ok"] is False
    assert phases["primary"]["primary_xacts_per_request"] > phases["one_web"]["primary_xacts_per_request"]
    # read-your-writes with the replica in use: a purchase drops the item from that user's next answer
    assert report["freshness"] and all(f.get("gone") for f in report["freshness"]), report["freshness"]
    # the worker's backlog built up while it was stopped, and was caught up when it came back
    assert report["backlog_items"] > 0
    assert report["caught_up"] == {"dirty_items": 0, "pending_events": 0, "queued_tasks": 0}
    # beat ran once: the worker host's beat held the lock, the second beat (on web2) stood by, and took over
    # when the worker host stopped
    assert report["beat"] == {
        "first_holder_is_worker_host": True,
        "standby_took_over": True,
        "standby_said_so": True,
    }

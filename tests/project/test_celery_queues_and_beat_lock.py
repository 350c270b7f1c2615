"""recsys_project/celery.py: queues by kind of work (so a deployment can give training its own machine), and
the beat lock (a second beat, here or on another machine, schedules nothing while the first one lives)."""

from __future__ import annotations

import pytest
from django.db import connections

from recsys_project.celery import BEAT_LOCK_KEY, QUEUES, app, beat_lock_try
from recsys_project.schedule import BEAT_SCHEDULE


@pytest.mark.parametrize(
    ("task", "queue"),
    [
        ("recommendations.tasks.two_tower_train_maintenance_task", "training"),
        ("analytics.tasks.attribution_sweep_task", "analytics"),
        ("analytics.tasks.metrics_rollup_sweep_task", "analytics"),
        ("analytics.tasks.events_retention_sweep_task", "analytics"),
        ("catalog.tasks.dirty_items_sweep_task", "embeddings"),
        ("accelerator.tasks.faiss_index_refresh_maintenance_task", "maintenance"),
        ("recommendations.tasks.covisitation_sweep_task", "maintenance"),
        ("interactions.tasks.user_vectors_apply_task", "default"),
    ],
)
def test_tasks_are_routed_to_the_queue_of_their_kind(task, queue):
    assert app.amqp.router.route({}, task)["queue"].name == queue


def test_every_scheduled_task_goes_to_a_queue_the_demo_worker_consumes():
    from recsys_project.management.commands.demo import QUEUES as DEMO_QUEUES

    assert DEMO_QUEUES.split(",") == list(QUEUES)
    for entry in BEAT_SCHEDULE.values():
        assert app.amqp.router.route({}, entry["task"])["queue"].name in QUEUES, entry["task"]


def _lock_holders() -> int:
    with connections["default"].cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND classid = %s AND objid = %s",
            [BEAT_LOCK_KEY >> 32, BEAT_LOCK_KEY & 0xFFFFFFFF],
        )
        return cur.fetchone()[0]


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
    second = beat_lock_try()
    try:
        assert second is not None  # the standby takes over
        assert _lock_holders() == 1
    finally:
        second.close()
    assert _lock_holders() == 0

"""recsys_project/celery.py: queues by kind of work, so that a deployment can give training (or analytics,
or embeddings) machines of their own."""

from __future__ import annotations

import pytest

from recsys_project.celery import QUEUES, app
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
        ("recommendations.tasks.candidate_lists_refresh_task", "maintenance"),
    ],
)
def test_tasks_are_routed_to_the_queue_of_their_kind(task, queue):
    assert app.amqp.router.route({}, task)["queue"].name == queue


def test_every_scheduled_task_goes_to_a_queue_the_demo_worker_consumes():
    from demo.management.commands.demo import QUEUES as DEMO_QUEUES

    assert DEMO_QUEUES.split(",") == list(QUEUES)
    for entry in BEAT_SCHEDULE.values():
        assert app.amqp.router.route({}, entry["task"])["queue"].name in QUEUES, entry["task"]

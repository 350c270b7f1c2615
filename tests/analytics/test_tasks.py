"""The beat tasks: scheduled with an expiry, and each runs its sweep (in-process here)."""

from __future__ import annotations

import pytest
from django.utils import timezone

from analytics.models import Attribution, DailyMetric
from analytics.tasks import attribution_sweep_task, metrics_rollup_sweep_task
from recsys_project.schedule import BEAT_SCHEDULE
from tests.factories import EventFactory, ItemFactory, served_list

pytestmark = pytest.mark.django_db


def test_analytics_sweeps_are_in_the_beat_schedule_with_an_expiry():
    tasks = {entry["task"]: entry for entry in BEAT_SCHEDULE.values()}
    for name in ("analytics.tasks.attribution_sweep_task", "analytics.tasks.metrics_rollup_sweep_task"):
        assert tasks[name]["options"]["expires"] > 0


def test_tasks_attribute_and_roll_up_todays_traffic():
    item = ItemFactory(category_path=[], embedding=None, published_at=None)
    now = timezone.now()
    served = served_list([item], surface="home", created_at=now)
    EventFactory(
        session_id="s1",
        item=item,
        event_type="click",
        recommendation_id=served.recommendation_id,
        timestamp=now,
    )
    assert attribution_sweep_task.apply().get() == {"clicks": 1, "conversions": 0}
    assert Attribution.objects.count() == 1
    metrics_rollup_sweep_task.apply().get()
    today = DailyMetric.objects.get(day=now.date(), surface="home", scenario="*")
    assert (today.impressions, today.clicks) == (1, 1)

"""Privacy: RECSYS_EVENT_RETENTION_DAYS prunes raw events once they are attributed and folded into user
vectors; recent events and events not folded yet stay; rollups and vectors survive."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from analytics.attribution import events_attribute_recent
from analytics.retention import events_prune
from analytics.tasks import events_retention_sweep_task
from interactions.models import Event, UserProfile
from interactions.user_vectors import user_vectors_apply
from tests.recommendations.factories import EventFactory, ItemFactory

pytestmark = pytest.mark.django_db


def old_and_new_events():
    item = ItemFactory()
    now = timezone.now()
    old = [EventFactory(item=item, user_id="u1", timestamp=now - timedelta(days=40)) for _ in range(3)]
    new = [EventFactory(item=item, user_id="u1", timestamp=now - timedelta(days=1)) for _ in range(2)]
    UserProfile.objects.create(external_id="u1")
    return old, new


def test_old_events_are_pruned_after_being_folded_and_attributed_and_recent_ones_stay():
    old, new = old_and_new_events()
    user_vectors_apply()
    events_attribute_recent()
    vector_before = UserProfile.objects.get(external_id="u1").embedding

    assert events_prune(days=30) == 3

    assert set(Event.objects.values_list("pk", flat=True)) == {e.pk for e in new}
    assert vector_before is not None
    assert np.array_equal(
        np.asarray(UserProfile.objects.get(external_id="u1").embedding), np.asarray(vector_before)
    )


def test_events_not_yet_in_the_user_vector_or_not_attributed_are_kept():
    old, _new = old_and_new_events()
    events_attribute_recent()
    assert events_prune(days=30) == 0  # not folded into the vector yet
    Event.objects.update(vector_applied=True)
    EventFactory(user_id="u1", timestamp=timezone.now() - timedelta(days=50))  # behind no attribution yet
    assert events_prune(days=30) == 3
    assert Event.objects.filter(timestamp__lt=timezone.now() - timedelta(days=30)).count() == 1


def test_a_retention_shorter_than_the_rollup_window_is_refused():
    with pytest.raises(ValueError):
        events_prune(days=1)
    with pytest.raises(CommandError, match="at least 3"):
        call_command("prune_events", "--days", "2")


def test_the_beat_task_is_a_no_op_when_retention_is_off_and_prunes_when_set(settings):
    old_and_new_events()
    user_vectors_apply()
    events_attribute_recent()
    settings.RECSYS_EVENT_RETENTION_DAYS = 0
    assert events_retention_sweep_task() == 0
    assert Event.objects.count() == 5
    settings.RECSYS_EVENT_RETENTION_DAYS = 30
    assert events_retention_sweep_task() == 3
    assert Event.objects.count() == 2


def test_the_command_needs_a_retention_and_reports_what_it_pruned(settings, capsys):
    old_and_new_events()
    user_vectors_apply()
    events_attribute_recent()
    settings.RECSYS_EVENT_RETENTION_DAYS = 0
    with pytest.raises(CommandError, match="no retention set"):
        call_command("prune_events")
    call_command("prune_events", "--days", "30", "--dry-run")
    assert "3 events would be pruned" in capsys.readouterr().out
    assert Event.objects.count() == 5
    call_command("prune_events", "--days", "30")
    assert "pruned 3 events" in capsys.readouterr().out
    assert Event.objects.count() == 2

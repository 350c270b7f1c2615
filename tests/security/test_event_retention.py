"""Privacy: RECSYS_EVENT_RETENTION_DAYS prunes raw events once they are attributed and folded into user
vectors, then the served lists no kept event or attribution refers to; recent events and lists and those
still needed stay; rollups and vectors survive."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from analytics.attribution import events_attribute_recent
from analytics.models import Attribution, DailyItemMetric, DailyMetric
from analytics.retention import PruneResult, events_prune, retention_prune, served_lists_prune
from analytics.rollups import daily_metrics_rollup
from analytics.tasks import events_retention_sweep_task
from interactions.models import Event, UserProfile
from interactions.user_vectors import user_vectors_apply
from recommendations.models import ServedList
from tests.factories import EventFactory, ItemFactory, served_list

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
    old_list = served_list([ItemFactory()], created_at=timezone.now() - timedelta(days=40))
    settings.RECSYS_EVENT_RETENTION_DAYS = 0
    assert events_retention_sweep_task() == {"events": 0, "served_lists": 0}
    assert (Event.objects.count(), ServedList.objects.count()) == (5, 1)
    settings.RECSYS_EVENT_RETENTION_DAYS = 30
    assert events_retention_sweep_task() == {"events": 3, "served_lists": 1}
    assert Event.objects.count() == 2
    assert not ServedList.objects.filter(pk=old_list.pk).exists()


def test_the_command_needs_a_retention_and_reports_what_it_pruned(settings, capsys):
    old, _new = old_and_new_events()
    # one old list is clicked by an old event (prunable with it), one by a recent event (kept)
    clicked_long_ago = served_list([old[0].item], created_at=old[0].timestamp)
    clicked_yesterday = served_list([old[0].item], created_at=old[0].timestamp)
    Event.objects.filter(pk=old[0].pk).update(recommendation_id=clicked_long_ago.pk)
    EventFactory(
        item=old[0].item, user_id=None, event_type="click", recommendation_id=clicked_yesterday.pk,
        timestamp=timezone.now() - timedelta(days=1),
    )  # fmt: skip
    user_vectors_apply()
    events_attribute_recent()
    settings.RECSYS_EVENT_RETENTION_DAYS = 0
    with pytest.raises(CommandError, match="no retention set"):
        call_command("prune_events")
    call_command("prune_events", "--days", "30", "--dry-run")
    assert "3 events and 1 served lists would be pruned" in capsys.readouterr().out
    assert (Event.objects.count(), ServedList.objects.count()) == (6, 2)
    call_command("prune_events", "--days", "30")
    assert "pruned 3 events and 1 served lists" in capsys.readouterr().out
    assert Event.objects.count() == 3
    assert list(ServedList.objects.values_list("pk", flat=True)) == [clicked_yesterday.pk]


def _rollup_of(day) -> tuple[list, list]:
    fields = [f.name for f in DailyMetric._meta.fields if f.name not in ("id", "created_at", "updated_at")]
    item_fields = [
        f.attname for f in DailyItemMetric._meta.fields if f.name not in ("id", "created_at", "updated_at")
    ]
    return (
        list(DailyMetric.objects.filter(day=day).order_by("surface", "scenario").values_list(*fields)),
        list(DailyItemMetric.objects.filter(day=day).order_by("item_id").values_list(*item_fields)),
    )


def test_old_served_lists_go_after_their_events_and_the_old_days_rollup_is_unchanged():
    a, b = ItemFactory(), ItemFactory()
    now = timezone.now()
    # 10:00 UTC, so that long_ago + 2 h is the same day's rollup whatever the hour the test runs
    long_ago = (now - timedelta(days=40)).replace(hour=10, minute=0, second=0, microsecond=0)
    clicked = served_list([a, b], surface="home", created_at=long_ago)
    served_list([b, a], surface="pdp", scenario="similar", created_at=long_ago + timedelta(hours=1))
    recent = served_list([a, b], surface="home", created_at=now - timedelta(days=1))
    UserProfile.objects.create(external_id="u1")
    EventFactory(item=b, event_type="click", recommendation_id=clicked.pk, timestamp=long_ago)
    EventFactory(
        item=b, event_type="purchase", value=Decimal("4.5"), quantity=2,
        timestamp=long_ago + timedelta(hours=2),
    )  # fmt: skip
    user_vectors_apply()
    events_attribute_recent()
    daily_metrics_rollup(day=long_ago.date())
    before = _rollup_of(long_ago.date())
    total = DailyMetric.objects.get(day=long_ago.date(), surface="*", scenario="*")
    assert (total.lists_served, total.impressions, total.clicks, total.conversions) == (2, 4, 1, 1)

    assert retention_prune(days=30) == PruneResult(events=2, served_lists=2)

    assert list(ServedList.objects.values_list("pk", flat=True)) == [recent.pk]
    assert not Attribution.objects.exists()
    assert _rollup_of(long_ago.date()) == before


def test_an_old_served_list_stays_while_an_event_or_attribution_that_stays_refers_to_it():
    item = ItemFactory()
    long_ago = timezone.now() - timedelta(days=40)
    waiting = served_list([item], created_at=long_ago)
    UserProfile.objects.create(external_id="u1")
    click = EventFactory(item=item, event_type="click", recommendation_id=waiting.pk, timestamp=long_ago)
    not_attributed_yet = served_list([item], created_at=long_ago)

    events_attribute_recent()  # attributed, but not folded into u1's vector yet: the click stays
    EventFactory(item=item, user_id=None, event_type="click", recommendation_id=not_attributed_yet.pk,
                 timestamp=long_ago)  # fmt: skip
    assert retention_prune(days=30) == PruneResult(events=0, served_lists=0)
    assert Attribution.objects.filter(event=click, recommendation_id=waiting.pk).exists()
    assert ServedList.objects.count() == 2

    user_vectors_apply()
    events_attribute_recent()
    assert retention_prune(days=30) == PruneResult(events=2, served_lists=2)
    assert not ServedList.objects.exists()


def test_served_lists_inside_the_attribution_window_stay_even_past_the_retention(settings):
    settings.RECSYS_ATTRIBUTION_WINDOW_HOURS = 40 * 24
    now = timezone.now()
    inside = served_list([ItemFactory()], created_at=now - timedelta(days=35))
    served_list([ItemFactory()], created_at=now - timedelta(days=45))
    assert retention_prune(days=30).served_lists == 1
    assert list(ServedList.objects.values_list("pk", flat=True)) == [inside.pk]


def test_served_lists_are_pruned_in_batches():
    long_ago = timezone.now() - timedelta(days=40)
    item = ItemFactory()
    for hours in range(5):
        served_list([item], created_at=long_ago + timedelta(hours=hours))
    kept = served_list([item], created_at=timezone.now() - timedelta(days=29))
    assert served_lists_prune(days=30, batch_size=2) == 5
    assert list(ServedList.objects.values_list("pk", flat=True)) == [kept.pk]


def test_an_attribution_row_of_a_kept_event_alone_keeps_its_old_list():
    item = ItemFactory()
    long_ago = timezone.now() - timedelta(days=40)
    credited = served_list([item], created_at=long_ago)
    purchase = EventFactory(item=item, event_type="purchase", timestamp=timezone.now() - timedelta(days=1))
    # a conversion credited to the old list, on a kept event that does not carry the list's id itself
    Attribution.objects.create(
        event=purchase, kind="conversion", recommendation_id=credited.pk, occurred_at=purchase.timestamp
    )
    events_attribute_recent()
    assert retention_prune(days=30) == PruneResult(events=0, served_lists=0)
    Attribution.objects.all().delete()
    assert retention_prune(days=30) == PruneResult(events=0, served_lists=1)

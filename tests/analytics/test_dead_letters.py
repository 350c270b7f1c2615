"""Issue 12: a row a sweep cannot process goes to the dead-letter table, and the sweep moves on."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from analytics.attribution import events_attribute_recent
from analytics.models import Attribution, AttributionCursor, DailyMetric, DeadLetter
from analytics.rollups import daily_metrics_rollup
from interactions.models import Event
from tests.factories import T0, EventFactory, ItemFactory, served_list

pytestmark = pytest.mark.django_db

# Past the validator's caps (an event stored before them, or written around the API): value x quantity is
# ~2e19, more than any revenue column holds.
POISON = {"value": Decimal("9999999999.9999"), "quantity": 2_000_000_000}


@pytest.fixture
def traffic_with_one_poison_purchase():
    """Six items shown in one list, each clicked and then bought (3 x 2.00); the 4th purchase is poison."""
    items = [ItemFactory(category_path=[], embedding=None, published_at=None) for _ in range(6)]
    served = served_list(items, surface="home", scenario="user", created_at=T0)
    clicks, purchases = [], []
    for n, item in enumerate(items):
        clicks.append(
            EventFactory(
                session_id="s1",
                timestamp=T0,
                item=item,
                event_type="click",
                recommendation_id=served.recommendation_id,
            )
        )
        amounts = POISON if n == 3 else {"value": Decimal("2"), "quantity": 3}
        purchases.append(
            EventFactory(
                session_id="s1",
                item=item,
                event_type="purchase",
                timestamp=T0 + timedelta(hours=1),
                **amounts,
            )
        )
    return clicks, purchases, purchases[3]


def test_one_poison_purchase_among_normal_ones_does_not_stop_attribution(traffic_with_one_poison_purchase):
    clicks, purchases, poison = traffic_with_one_poison_purchase
    assert events_attribute_recent() == {"clicks": 6, "conversions": 5}
    assert set(Attribution.objects.filter(kind="click").values_list("event_id", flat=True)) == {
        c.pk for c in clicks
    }
    converted = set(Attribution.objects.filter(kind="conversion").values_list("event_id", flat=True))
    assert converted == {p.pk for p in purchases} - {poison.pk}
    letter = DeadLetter.objects.get()
    assert (letter.sweep, letter.key, letter.attempts, letter.resolved) == (
        "attribution",
        str(poison.pk),
        1,
        False,
    )
    assert "overflow" in letter.error
    # the cursor moved past every event, the poison one included
    assert AttributionCursor.objects.get(name="events").last_event_pk == Event.objects.latest("pk").pk


def test_rollup_of_the_poison_day_is_still_computed(traffic_with_one_poison_purchase):
    events_attribute_recent()
    assert daily_metrics_rollup(day=T0.date()) == 3  # home/user, home/*, */*
    total = DailyMetric.objects.get(day=T0.date(), surface="*", scenario="*")
    assert (total.clicks, total.conversions, total.revenue) == (6, 5, Decimal("30"))
    assert DeadLetter.objects.get().key == str(traffic_with_one_poison_purchase[2].pk)


def test_later_events_are_attributed_after_a_poison_one(traffic_with_one_poison_purchase):
    events_attribute_recent()
    item = ItemFactory(category_path=[], embedding=None, published_at=None)
    served = served_list([item], created_at=T0)
    late_click = EventFactory(
        session_id="s1",
        timestamp=T0,
        item=item,
        event_type="click",
        recommendation_id=served.recommendation_id,
    )
    assert events_attribute_recent() == {"clicks": 1, "conversions": 0}
    assert Attribution.objects.filter(event=late_click).exists()


def test_a_dead_letter_is_retried_a_few_times_by_the_sweeps_then_left_alone(traffic_with_one_poison_purchase):
    events_attribute_recent()
    for _ in range(5):
        daily_metrics_rollup(day=T0.date())  # re-attributes the day: meets the poison row again
    letter = DeadLetter.objects.get()
    assert letter.attempts == 3  # DEAD_LETTER_MAX_ATTEMPTS, then skipped
    assert not letter.resolved


def test_retrying_a_fixed_row_attributes_it_and_resolves_the_dead_letter(traffic_with_one_poison_purchase):
    from analytics.deadletters import dead_letter_retry

    poison = traffic_with_one_poison_purchase[2]
    events_attribute_recent()
    letter = DeadLetter.objects.get()
    assert dead_letter_retry(dead_letter=letter) is False  # still poison: one more attempt, same error
    letter.refresh_from_db()
    assert (letter.attempts, letter.resolved) == (2, False)
    Event.objects.filter(pk=poison.pk).update(value=Decimal("2"), quantity=3)  # the shop fixes the row
    assert dead_letter_retry(dead_letter=letter) is True
    letter.refresh_from_db()
    assert letter.resolved
    assert Attribution.objects.get(event=poison, kind="conversion").revenue == Decimal("6")


def test_a_day_whose_rollup_fails_is_dead_lettered_and_the_other_day_still_rolls_up(monkeypatch):
    from analytics import rollups
    from analytics.tasks import metrics_rollup_sweep_task

    real = rollups.window_metrics_compute
    today = timezone.now().date()

    def broken_for_yesterday(*, start, end):
        """A real database error on yesterday's rollup (nothing in the data can break it any more)."""
        if start.date() != today:
            with connection.cursor() as cur:
                cur.execute("SELECT 1/0")
        return real(start=start, end=end)

    monkeypatch.setattr(rollups, "window_metrics_compute", broken_for_yesterday)
    item = ItemFactory(category_path=[], embedding=None, published_at=None)
    served_list([item], surface="home")
    result = metrics_rollup_sweep_task.apply().get()
    assert result[str(today)] == 3
    assert result[str(today - timedelta(days=1))] is None
    letter = DeadLetter.objects.get()
    assert (letter.sweep, letter.key) == ("daily_metrics_rollup", str(today - timedelta(days=1)))
    assert "division by zero" in letter.error
    assert DailyMetric.objects.filter(day=today).count() == 3


def test_a_row_pointing_at_an_event_deleted_meanwhile_fails_alone_not_at_commit():
    """Foreign keys are deferred to commit: the row's own savepoint must see the violation."""
    from analytics.attribution import clicks_attribute
    from analytics.deadletters import rows_each

    item = ItemFactory(category_path=[], embedding=None, published_at=None)
    served = served_list([item], created_at=T0)
    gone, kept = (
        EventFactory(
            session_id="s1",
            timestamp=T0,
            item=item,
            event_type="click",
            recommendation_id=served.recommendation_id,
        )
        for _ in range(2)
    )
    Event.objects.filter(pk=gone.pk).delete()  # erased between the sweep's read and its insert
    failed = rows_each(
        sweep="attribution",
        rows=[gone, kept],
        key=lambda e: str(e.pk),
        process=lambda e: clicks_attribute(events=[e]),
    )
    assert failed == 1
    assert "foreign key" in DeadLetter.objects.get(key=str(gone.pk)).error
    assert list(Attribution.objects.values_list("event_id", flat=True)) == [kept.pk]

"""Attribution: clicks to served lists, flagged unknown lists, conversions within the window."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import override_settings
from django.utils import timezone

from analytics.attribution import events_attribute_recent, served_log_grace
from analytics.models import Attribution, AttributionKind
from interactions.models import Event
from tests.factories import T0, EventFactory, ItemFactory, served_list

pytestmark = pytest.mark.django_db


@pytest.fixture
def shown():
    items = [ItemFactory(category_path=[], embedding=None, published_at=None) for _ in range(3)]
    return items, served_list(items, surface="pdp", scenario="similar")


def test_click_with_recommendation_id_is_attributed_to_list_surface_scenario_and_position(shown):
    items, served = shown
    click = EventFactory(
        session_id="s1",
        timestamp=T0,
        item=items[1],
        event_type="click",
        recommendation_id=served.recommendation_id,
    )
    events_attribute_recent()
    a = Attribution.objects.get(event=click)
    assert (a.kind, a.recommendation_id, a.list_known) == ("click", served.recommendation_id, True)
    assert (a.surface, a.scenario, a.position) == ("pdp", "similar", 2)  # derived: 2nd in the list


def test_position_sent_by_the_client_wins_over_the_derived_one(shown):
    items, served = shown
    click = EventFactory(
        session_id="s1",
        timestamp=T0,
        item=items[0],
        event_type="add_to_cart",
        recommendation_id=served.recommendation_id,
        position=7,
    )
    events_attribute_recent()
    a = Attribution.objects.get(event=click)
    assert (a.kind, a.position) == (AttributionKind.ADD_TO_CART, 7)


def test_click_with_unknown_recommendation_id_is_stored_and_flagged_after_the_grace_period():
    stray = uuid.uuid4()
    click = EventFactory(
        session_id="s1", timestamp=T0, event_type="click", recommendation_id=stray, surface="home"
    )
    events_attribute_recent()
    assert not Attribution.objects.filter(event=click).exists()  # its list may still be on its way
    events_attribute_recent(now=timezone.now() + served_log_grace() + timedelta(seconds=1))
    assert Event.objects.filter(pk=click.pk).exists()
    a = Attribution.objects.get(event=click)
    assert a.list_known is False
    assert a.surface == "home"
    assert a.recommendation_id == stray


def test_views_and_clicks_without_recommendation_id_are_not_attributed(shown):
    items, served = shown
    EventFactory(
        session_id="s1",
        timestamp=T0,
        item=items[0],
        event_type="view",
        recommendation_id=served.recommendation_id,
    )
    EventFactory(session_id="s1", timestamp=T0, item=items[0], event_type="click")
    events_attribute_recent()
    assert not Attribution.objects.exists()


def test_purchase_of_clicked_item_within_window_converts_the_list_with_revenue(shown):
    items, served = shown
    click = EventFactory(
        session_id="s1",
        timestamp=T0,
        item=items[2],
        event_type="click",
        recommendation_id=served.recommendation_id,
    )
    purchase = EventFactory(
        session_id="s1",
        item=items[2],
        event_type="purchase",
        timestamp=T0 + timedelta(hours=3),
        value=Decimal("12.50"),
        quantity=2,
    )
    events_attribute_recent()
    conv = Attribution.objects.get(event=purchase, kind=AttributionKind.CONVERSION)
    assert conv.recommendation_id == served.recommendation_id
    assert conv.source_event_id == click.pk
    assert (conv.surface, conv.scenario, conv.position) == ("pdp", "similar", 3)
    assert conv.revenue == Decimal("25.00")


def test_purchase_in_the_same_session_by_an_anonymous_visitor_converts(shown):
    items, served = shown
    EventFactory(
        timestamp=T0,
        item=items[0],
        user_id=None,
        session_id="anon-1",
        event_type="click",
        recommendation_id=served.recommendation_id,
    )
    purchase = EventFactory(
        item=items[0],
        user_id=None,
        session_id="anon-1",
        event_type="purchase",
        timestamp=T0 + timedelta(minutes=5),
    )
    events_attribute_recent()
    assert Attribution.objects.filter(event=purchase, kind="conversion").exists()


def test_purchase_after_the_window_or_of_another_item_or_by_another_user_does_not_convert(shown):
    items, served = shown
    EventFactory(
        session_id="s1",
        timestamp=T0,
        item=items[0],
        event_type="click",
        recommendation_id=served.recommendation_id,
    )
    late = EventFactory(
        session_id="s1", item=items[0], event_type="purchase", timestamp=T0 + timedelta(hours=25)
    )
    other_item = EventFactory(
        session_id="s1", item=items[1], event_type="purchase", timestamp=T0 + timedelta(hours=1)
    )
    other_user = EventFactory(
        item=items[0], user_id="u2", session_id="s2", event_type="purchase", timestamp=T0 + timedelta(hours=1)
    )
    before = EventFactory(
        session_id="s1", item=items[0], event_type="purchase", timestamp=T0 - timedelta(minutes=1)
    )
    events_attribute_recent()
    assert not Attribution.objects.filter(event__in=[late, other_item, other_user, before]).exists()


@override_settings(RECSYS_ATTRIBUTION_WINDOW_HOURS=48)
def test_attribution_window_is_configurable(shown):
    items, served = shown
    EventFactory(
        session_id="s1",
        timestamp=T0,
        item=items[0],
        event_type="click",
        recommendation_id=served.recommendation_id,
    )
    late = EventFactory(
        session_id="s1", item=items[0], event_type="purchase", timestamp=T0 + timedelta(hours=25)
    )
    events_attribute_recent()
    assert Attribution.objects.filter(event=late, kind="conversion").exists()


def test_purchase_after_a_click_on_an_unknown_list_is_not_a_conversion():
    item = ItemFactory(category_path=[], embedding=None, published_at=None)
    EventFactory(session_id="s1", timestamp=T0, item=item, event_type="click", recommendation_id=uuid.uuid4())
    purchase = EventFactory(
        session_id="s1", item=item, event_type="purchase", timestamp=T0 + timedelta(hours=1)
    )
    events_attribute_recent()
    assert not Attribution.objects.filter(event=purchase).exists()


def test_conversion_goes_to_the_latest_click_before_the_purchase():
    item = ItemFactory(category_path=[], embedding=None, published_at=None)
    first, second = served_list([item], surface="home"), served_list([item], surface="pdp")
    EventFactory(
        session_id="s1",
        timestamp=T0,
        item=item,
        event_type="click",
        recommendation_id=first.recommendation_id,
    )
    EventFactory(
        session_id="s1",
        item=item,
        event_type="click",
        recommendation_id=second.recommendation_id,
        timestamp=T0 + timedelta(hours=1),
    )
    purchase = EventFactory(
        session_id="s1", item=item, event_type="purchase", timestamp=T0 + timedelta(hours=2)
    )
    events_attribute_recent()
    assert Attribution.objects.get(event=purchase).recommendation_id == second.recommendation_id


def test_running_the_sweep_twice_attributes_each_event_once(shown):
    items, served = shown
    EventFactory(
        session_id="s1",
        timestamp=T0,
        item=items[0],
        event_type="click",
        recommendation_id=served.recommendation_id,
    )
    EventFactory(
        session_id="s1", item=items[0], event_type="purchase", timestamp=T0 + timedelta(hours=1), value=3
    )
    first = events_attribute_recent()
    second = events_attribute_recent()
    assert first == {"clicks": 1, "conversions": 1}
    assert second == {"clicks": 0, "conversions": 0}
    assert Attribution.objects.count() == 2


def test_sweep_picks_up_events_that_arrive_after_earlier_sweeps(shown):
    items, served = shown
    EventFactory(
        session_id="s1",
        timestamp=T0,
        item=items[0],
        event_type="click",
        recommendation_id=served.recommendation_id,
    )
    events_attribute_recent()
    purchase = EventFactory(
        session_id="s1", item=items[0], event_type="purchase", timestamp=T0 + timedelta(hours=1)
    )
    events_attribute_recent()
    assert Attribution.objects.filter(event=purchase, kind="conversion").exists()


def test_events_ingested_through_the_api_are_attributed_by_the_sweep(api, shown):
    items, served = shown
    body = {
        "events": [
            {
                "event_id": "api-click",
                "user_id": "u9",
                "session_id": "s9",
                "item_id": items[0].external_id,
                "event_type": "click",
                "timestamp": T0.isoformat(),
                "recommendation_id": str(served.recommendation_id),
                "surface": "pdp",
                "position": 1,
            }
        ]
    }
    assert api.post("/api/v1/events", body, format="json").status_code == 200
    events_attribute_recent()
    a = Attribution.objects.get(event__event_id="api-click")
    assert (a.list_known, a.position, a.scenario) == (True, 1, "similar")


def test_sweep_rereads_events_that_committed_behind_the_cursor(shown):
    """An event whose id is below the cursor (its transaction committed late) is still attributed."""
    items, served = shown
    early = EventFactory(session_id="s1", timestamp=T0, item=items[0], event_type="view")
    EventFactory(session_id="s1", timestamp=T0, item=items[0], event_type="view")
    events_attribute_recent()
    # simulate the late commit: a click that got an id lower than the cursor
    Event.objects.filter(pk=early.pk).update(event_type="click", recommendation_id=served.recommendation_id)
    events_attribute_recent()
    assert Attribution.objects.filter(event=early, kind="click").exists()


def test_largest_accepted_value_times_quantity_attributes_and_rolls_up_without_overflow(shown):
    """value and quantity at the validator's caps, twice in one day: the conversion's revenue and the
    day's sum fit their columns (issue 12: they overflowed numeric(16,4))."""
    from analytics.models import DailyMetric
    from analytics.rollups import daily_metrics_rollup
    from core.payloads import check_event

    items, served = shown
    for item in items[:2]:
        EventFactory(
            session_id="s1",
            timestamp=T0,
            item=item,
            event_type="click",
            recommendation_id=served.recommendation_id,
        )
        raw = {
            "event_id": f"max-{item.pk}",
            "user_id": "u1",
            "item_id": item.external_id,
            "event_type": "purchase",
            "timestamp": (T0 + timedelta(hours=1)).isoformat(),
            "value": "1000000000",
            "quantity": 100_000,
        }
        clean, errors = check_event(raw)
        assert errors == {}
        EventFactory(session_id="s1", item=item, event_type="purchase", timestamp=clean["timestamp"], value=clean["value"],
                     quantity=clean["quantity"])  # fmt: skip
    assert events_attribute_recent() == {"clicks": 2, "conversions": 2}
    revenues = Attribution.objects.filter(kind="conversion").values_list("revenue", flat=True)
    assert list(revenues) == [Decimal("1e14")] * 2
    daily_metrics_rollup(day=T0.date())
    assert DailyMetric.objects.get(day=T0.date(), surface="*", scenario="*").revenue == Decimal("2e14")


def test_click_waits_for_its_served_list_logged_late_and_is_then_attributed_to_it():
    items = [ItemFactory() for _ in range(3)]
    late_id = uuid.uuid4()
    click = EventFactory(item=items[2], event_type="click", recommendation_id=late_id)
    later = EventFactory(item=items[0], event_type="view")  # the cursor must not pass the held click
    events_attribute_recent()
    assert not Attribution.objects.filter(event=click).exists()
    served = served_list(items, surface="home", scenario="user", recommendation_id=late_id)
    events_attribute_recent()
    a = Attribution.objects.get(event=click)
    assert (a.list_known, a.recommendation_id, a.position, a.surface) == (
        True,
        served.recommendation_id,
        3,
        "home",
    )
    assert later.pk > click.pk


def test_purchase_after_a_held_click_converts_once_the_list_arrives():
    item = ItemFactory()
    late_id = uuid.uuid4()
    EventFactory(item=item, user_id="u-late", event_type="click", recommendation_id=late_id)
    purchase = EventFactory(item=item, user_id="u-late", event_type="purchase", value=Decimal("10"))
    events_attribute_recent()
    assert not Attribution.objects.filter(event=purchase).exists()
    served_list([item], surface="home", scenario="user", recommendation_id=late_id)
    events_attribute_recent()
    conversion = Attribution.objects.get(event=purchase, kind="conversion")
    assert conversion.recommendation_id == late_id

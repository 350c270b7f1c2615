"""Simulated shoppers: past days of traffic through the real serving path, with impressions, clicks,
add-to-carts and purchases that carry the served lists' recommendation_ids."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from analytics.models import Attribution, DailyMetric
from analytics.rollups import daily_metrics_rollups
from demo.shop import DemoShop, demo_shop_load
from demo.traffic import demo_traffic_simulate
from interactions.models import Event
from recommendations.models import ServedList
from recommendations.services import item_popularity_refresh

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def shop():
    shop = DemoShop(items=120, users=40, seed=7)
    demo_shop_load(shop=shop)
    call_command("embed_items", stdout=open("/dev/null", "w"))  # noqa: SIM115
    item_popularity_refresh()
    return shop


def test_simulated_days_are_served_by_the_scenarios_and_backdated(shop):
    now = timezone.now()
    result = demo_traffic_simulate(shop=shop, days=4, visits_per_day=6, now=now)
    lists = list(ServedList.objects.filter(session_id__startswith="demo-sim-"))
    assert result.visits == 24 and len(lists) == result.lists_served >= 48  # two home lists per visit
    assert {s.surface for s in lists} >= {"home", "trending"}
    assert all(now - timedelta(days=4) <= s.created_at < now for s in lists)
    assert len({s.created_at.date() for s in lists}) >= 4
    assert all(s.latency_ms > 0 for s in lists)  # each simulated request's serve time, as if live
    # impressions: the shopper saw at least the first half of every list that had items
    assert all(
        s.seen_positions[: (len(s.item_pks) + 1) // 2] == list(range(1, (len(s.item_pks) + 1) // 2 + 1))
        for s in lists
        if s.item_pks
    )


def test_clicks_carry_the_list_position_and_surface_they_came_from(shop):
    result = demo_traffic_simulate(shop=shop, days=4, visits_per_day=6)
    clicks = list(Event.objects.filter(event_type="click", session_id__startswith="demo-sim-"))
    assert len(clicks) == result.clicks > 0
    assert Event.objects.filter(session_id__startswith="demo-sim-").count() == result.events
    served = {s.recommendation_id: s for s in ServedList.objects.filter(session_id__startswith="demo-sim-")}
    for click in clicks:
        origin = served[click.recommendation_id]
        assert origin.session_id == click.session_id and origin.user_id == click.user_id
        assert origin.item_pks[click.position - 1] == click.item_id
        assert origin.surface == click.surface
        assert origin.created_at < click.timestamp
    purchases = Event.objects.filter(event_type="purchase", session_id__startswith="demo-sim-")
    assert purchases.count() == result.purchases


def test_rollups_of_the_simulated_days_attribute_the_traffic(shop):
    now = timezone.now()
    # enough visits that purchases happen whatever lists are served (about 1 visit in 25 buys; 3 of 72 once
    # the default profile changed, 0 of 32 with the 8 visits a day this test had)
    result = demo_traffic_simulate(shop=shop, days=3, visits_per_day=48, now=now)
    days = [(now - timedelta(days=n)).date() for n in range(3, -1, -1)]
    daily_metrics_rollups(days=days)
    known = Attribution.objects.filter(list_known=True)
    assert known.filter(kind="click").count() == result.clicks
    assert known.filter(kind="add_to_cart").count() == result.add_to_carts
    totals = DailyMetric.objects.filter(surface="*", scenario="*")
    assert sum(d.lists_served for d in totals) == result.lists_served
    assert sum(d.clicks for d in totals) == result.clicks
    # every simulated purchase follows a click on a list in the same session: each one is a conversion
    assert sum(d.conversions for d in totals) == result.purchases > 0

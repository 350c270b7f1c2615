"""Live metrics over a window and the daily rollup per surface and scenario."""

from __future__ import annotations

import math
from datetime import timedelta
from decimal import Decimal

import pytest

from analytics.models import DailyItemMetric, DailyMetric
from analytics.rollups import ALL, daily_metrics_rollup, window_metrics_compute
from tests.factories import T0, EventFactory, ItemFactory, leading, served_list

pytestmark = pytest.mark.django_db


@pytest.fixture
def day_of_traffic():
    """4 active items (+1 inactive). Home/user served [a, b] twice; pdp/similar served [a, c] once.
    One click on b from the first home list, then a purchase of b (2 x 5.00)."""
    a = ItemFactory(category_path=[], published_at=None, embedding=leading(1, 0))
    b = ItemFactory(category_path=[], published_at=None, embedding=leading(0, 1))
    c = ItemFactory(category_path=[], published_at=None, embedding=leading(1, 1))
    ItemFactory(category_path=[], embedding=None, published_at=None)  # never shown
    ItemFactory(category_path=[], embedding=None, published_at=None, is_active=False)
    home1 = served_list([a, b], surface="home", scenario="user", created_at=T0)
    served_list([a, b], surface="home", scenario="user", created_at=T0 + timedelta(hours=1))
    served_list([a, c], surface="pdp", scenario="similar", created_at=T0 + timedelta(hours=2))
    served_list([a, b, c], surface="home", scenario="user", created_at=T0 + timedelta(days=1))  # next day
    EventFactory(
        session_id="s1",
        item=b,
        event_type="click",
        recommendation_id=home1.recommendation_id,
        timestamp=T0 + timedelta(minutes=1),
    )
    EventFactory(
        session_id="s1",
        item=b,
        event_type="purchase",
        timestamp=T0 + timedelta(hours=3),
        value=Decimal("5"),
        quantity=2,
    )
    # popularity for novelty: 4 users in all; a seen by 2 of them
    EventFactory(session_id="s1", item=a, user_id="u2", timestamp=T0 - timedelta(days=1))
    EventFactory(session_id="s1", item=c, user_id="u3", timestamp=T0 - timedelta(days=1))
    EventFactory(session_id="s1", item=b, user_id="u4", timestamp=T0 - timedelta(days=1))
    return a, b, c


def test_daily_rollup_writes_one_row_per_surface_and_scenario_with_hand_computed_metrics(day_of_traffic):
    a, b, c = day_of_traffic
    assert daily_metrics_rollup(day=T0.date()) == 5  # home/user, home/*, pdp/similar, pdp/*, */*
    home = DailyMetric.objects.get(day=T0.date(), surface="home", scenario="user")
    assert (home.lists_served, home.impressions, home.clicks, home.conversions) == (2, 4, 1, 1)
    assert home.revenue == Decimal("10")
    assert home.ctr == pytest.approx(0.25)
    assert home.conversion_rate == pytest.approx(1.0)
    assert home.catalog_size == 4
    assert home.coverage == pytest.approx(0.5)  # a, b of 4 active items
    assert home.diversity == pytest.approx(1.0)  # a ⟂ b
    # impressions over the 4 active items: [2, 2, 0, 0] -> G = 2*(3*2 + 4*2)/(4*4) - 5/4 = 0.5
    assert home.gini == pytest.approx(0.5)
    # users: u1, u2, u3, u4. popularity a={u1? no: u2} ... a: u2 -> 1; b: u1, u4 -> 2
    assert home.novelty == pytest.approx((2 * math.log2(4) + 2 * math.log2(2)) / 4)

    pdp = DailyMetric.objects.get(day=T0.date(), surface="pdp", scenario="similar")
    assert (pdp.impressions, pdp.clicks) == (2, 0)
    assert pdp.diversity == pytest.approx(1 - 1 / math.sqrt(2))

    total = DailyMetric.objects.get(day=T0.date(), surface=ALL, scenario=ALL)
    assert (total.lists_served, total.impressions, total.clicks) == (3, 6, 1)
    assert total.coverage == pytest.approx(0.75)


def test_rollup_writes_per_item_impressions_clicks_and_conversions(day_of_traffic):
    a, b, c = day_of_traffic
    daily_metrics_rollup(day=T0.date())
    rows = {r.item_id: r for r in DailyItemMetric.objects.filter(day=T0.date())}
    assert rows[a.pk].impressions == 3
    assert (rows[b.pk].impressions, rows[b.pk].clicks, rows[b.pk].conversions) == (2, 1, 1)
    assert rows[b.pk].revenue == Decimal("10")
    assert rows[c.pk].impressions == 1


def test_rerunning_a_day_replaces_its_rows(day_of_traffic):
    daily_metrics_rollup(day=T0.date())
    daily_metrics_rollup(day=T0.date())
    assert DailyMetric.objects.filter(day=T0.date()).count() == 5


def test_window_metrics_can_span_any_window(day_of_traffic):
    slices = window_metrics_compute(start=T0 - timedelta(hours=1), end=T0 + timedelta(days=2))
    home = slices[("home", "user")]
    assert (home.lists_served, home.impressions, home.clicks) == (3, 7, 1)
    assert home.coverage == pytest.approx(0.75)


def test_a_day_without_traffic_rolls_up_to_nothing(db):
    assert daily_metrics_rollup(day=T0.date()) == 0
    assert not DailyMetric.objects.exists()

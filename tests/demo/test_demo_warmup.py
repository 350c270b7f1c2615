"""`manage.py demo_warmup`: what `manage.py demo` runs once after loading the shop."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from analytics.models import DailyMetric, EvaluationRun
from catalog.models import Item
from demo.shop import DemoShop, demo_shop_load
from recommendations.models import ItemPopularity, ServedList

pytestmark = pytest.mark.django_db(transaction=True)


def warm_up(**options) -> str:
    out = io.StringIO()
    call_command("demo_warmup", stdout=out, **options)
    return out.getvalue()


def test_warm_up_leaves_vectors_trending_traffic_rollups_and_a_run():
    demo_shop_load(shop=DemoShop(items=60, users=30, seed=3))
    output = warm_up(items=60, users=30, seed=3, days=2)
    assert not Item.objects.filter(embedding__isnull=True).exists()
    assert ItemPopularity.objects.exists()
    assert ServedList.objects.filter(session_id__startswith="demo-sim-").exists()
    assert DailyMetric.objects.filter(lists_served__gt=0).values("day").distinct().count() >= 2
    assert EvaluationRun.objects.filter(label="demo").count() == 1
    assert "2 days of simulated shoppers" in output and "skipped" not in output


def test_a_shop_without_shoppers_still_warms_up_and_says_what_it_skipped():
    demo_shop_load(shop=DemoShop(items=20, users=0, seed=3))
    output = warm_up(items=20, users=0, seed=3, days=2)
    assert "0 visits" in output
    assert "skipped: No events" in output  # nothing to evaluate
    assert not EvaluationRun.objects.exists()


def test_days_are_checked():
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="--days"):
        warm_up(days=0)

"""The demo-shop generator (demo/shop.py) and its loader command `seed_demo`."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import CommandError, call_command

from catalog.models import Category, Item
from core.payloads import check_event, check_item
from demo.shop import HISTORY_DAYS, DemoShop, demo_shop_is_loaded, demo_shop_load
from interactions.models import Event, UserProfile

ANCHOR = datetime(2026, 11, 1, 12, tzinfo=UTC)


def small_shop(**overrides) -> DemoShop:
    options = {"items": 400, "users": 60, "seed": 7, "anchor": ANCHOR} | overrides
    return DemoShop(**options)


def test_same_seed_gives_the_same_items_and_events():
    first, second = small_shop(), small_shop()
    assert first.items_build() == second.items_build()
    assert list(first.events_iter()) == list(second.events_iter())


def test_another_seed_gives_another_shop():
    assert small_shop().items_build() != small_shop(seed=8).items_build()
    first_events = [e["item_id"] for e in small_shop().events_iter()]
    other_events = [e["item_id"] for e in small_shop(seed=8).events_iter()]
    assert first_events != other_events


def test_every_item_and_event_passes_the_api_validation():
    shop = small_shop()
    for raw in shop.items_build():
        assert check_item(raw)[1] == {}, raw
    events = list(shop.events_iter())
    assert events
    for raw in events:
        assert check_event(raw)[1] == {}, raw


def test_catalog_spans_a_category_tree_with_plausible_fields():
    items = DemoShop(items=3000, users=0, seed=1, anchor=ANCHOR).items_build()
    assert len({item["id"] for item in items}) == 3000
    departments = {item["category_path"][0] for item in items}
    leaves = {tuple(item["category_path"]) for item in items}
    assert len(departments) >= 6 and len(leaves) >= 30
    assert all(len(item["category_path"]) >= 2 for item in items)
    prices = sorted(float(item["price"]) for item in items)
    assert prices[0] > 0 and prices[len(prices) // 2] < 200 < prices[-1]
    assert len({item["brand"] for item in items}) >= 50
    assert len({item["title"] for item in items}) > 1500
    out_of_stock = sum(1 for item in items if item["stock"] == 0)
    assert 0 < out_of_stock < len(items) * 0.2


def test_events_stay_within_the_last_90_days_before_the_anchor():
    timestamps = [datetime.fromisoformat(e["timestamp"]) for e in small_shop().events_iter()]
    assert max(timestamps) <= ANCHOR
    assert min(timestamps) >= ANCHOR - timedelta(days=HISTORY_DAYS, hours=1)
    # spread over the period, not bunched up on one day
    assert len({t.date() for t in timestamps}) > 60


def test_a_shoppers_events_concentrate_in_their_preferred_categories_and_price_band():
    shop = DemoShop(items=2000, users=200, seed=3, anchor=ANCHOR)
    tastes = shop.tastes_build()
    preferred = {shop.user_id(u): {shop.leaves[leaf] for leaf in t.leaves} for u, t in enumerate(tastes)}
    catalog_share = Counter(tuple(item["category_path"]) for item in shop.items_build())
    in_taste, views, chance = defaultdict(int), defaultdict(int), {}
    for user, leaves in preferred.items():
        chance[user] = sum(catalog_share[leaf] for leaf in leaves) / shop.n_items
    for event in shop.events_iter():
        if event["event_type"] != "view":
            continue
        user = event["user_id"]
        views[user] += 1
        in_taste[user] += shop.item_leaf(event["item_id"]) in preferred[user]
    share = sum(in_taste[u] / views[u] for u in views) / len(views)
    expected_by_chance = sum(chance.values()) / len(chance)
    assert share > 0.7
    assert share > 5 * expected_by_chance


def test_funnel_ratios_are_ordered_and_realistic():
    counts = Counter(
        e["event_type"] for e in DemoShop(items=1000, users=300, seed=5, anchor=ANCHOR).events_iter()
    )
    assert counts["view"] > counts["click"] > counts["add_to_cart"] > counts["purchase"] > 0
    assert 0.15 < counts["click"] / counts["view"] < 0.5
    assert 0.005 < counts["purchase"] / counts["view"] < 0.08


def test_every_purchase_follows_a_cart_of_the_same_item_in_the_same_session():
    carted = set()
    for event in small_shop().events_iter():
        key = (event["session_id"], event["item_id"])
        if event["event_type"] == "add_to_cart":
            carted.add(key)
        elif event["event_type"] == "purchase":
            assert key in carted, event
            assert float(event["value"]) > 0 and event["quantity"] >= 1


@pytest.mark.django_db
def test_loading_twice_stores_nothing_twice_and_links_every_event():
    shop = small_shop(items=120, users=15)
    assert not demo_shop_is_loaded(shop=shop)
    first = demo_shop_load(shop=shop)
    events = list(shop.events_iter())
    assert first.items_created == 120 and first.events_accepted == len(events)
    assert demo_shop_is_loaded(shop=shop)
    assert Item.objects.count() == 120
    assert Event.objects.count() == len(events)
    assert not Event.objects.filter(item__isnull=True).exists()
    assert UserProfile.objects.count() == 15
    assert Category.objects.filter(depth=0).exists()

    again = demo_shop_load(shop=shop)
    assert (again.items_created, again.items_updated, again.items_unchanged) == (0, 0, 120)
    assert (again.events_accepted, again.events_duplicates) == (0, len(events))
    assert Event.objects.count() == len(events)
    assert sum(UserProfile.objects.values_list("event_count", flat=True)) == len(events)


@pytest.mark.django_db
def test_an_interrupted_load_is_not_taken_for_a_finished_one():
    shop = small_shop(items=50, users=4)
    demo_shop_load(shop=shop)
    Event.objects.filter(event_id=shop.last_event_id()).delete()
    assert not demo_shop_is_loaded(shop=shop)


@pytest.mark.django_db
def test_seed_demo_command_loads_the_requested_size(capsys):
    call_command("seed_demo", items=40, users=3, seed=11, anchor=ANCHOR.isoformat())
    assert Item.objects.filter(external_id__startswith="demo-").count() == 40
    assert Event.objects.values("user_id").distinct().count() == 3
    assert "Demo shop loaded: items 40 created" in capsys.readouterr().out

    call_command("seed_demo", items=40, users=3, seed=11, anchor=ANCHOR.isoformat(), if_missing=True)
    assert "already loaded" in capsys.readouterr().out


@pytest.mark.parametrize(
    "options, message",
    [
        ({"items": 0}, "--items"),
        ({"users": -1}, "--users"),
        ({"anchor": "yesterday"}, "--anchor"),
        ({"anchor": "2026-01-01T00:00:00"}, "time zone"),
    ],
)
def test_seed_demo_refuses_bad_options_with_a_clear_message(options, message):
    with pytest.raises(CommandError, match=message):
        call_command("seed_demo", **options)


@pytest.mark.slow
def test_seed_demo_on_an_unmigrated_database_says_to_migrate_and_writes_nothing():
    from tests.project.processes import cleanup_data_dir, manage, short_data_dir

    data_dir = short_data_dir()
    try:
        result = manage(data_dir, "seed_demo", "--items", "5", "--users", "1")
        assert result.returncode != 0
        assert "unapplied migration(s): run `python manage.py migrate` first" in result.stderr
    finally:
        cleanup_data_dir(data_dir)

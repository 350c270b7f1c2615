"""Promotions through the API: targets, boost, pinned slot, time windows, surfaces."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from catalog.models import Promotion
from tests.factories import ItemFactory, UserProfileFactory, blend, topic

pytestmark = pytest.mark.django_db
URL = "/api/v1/recommendations/users/u1"


@pytest.fixture
def shop():
    UserProfileFactory(external_id="u1", embedding=topic(1))
    for i in range(8):
        ItemFactory(external_id=f"shoe-{i}", embedding=topic(1, jitter=0.3, seed=i), brand="Runwell")
    # relevant but ranked below every shoe
    ItemFactory(
        external_id="sock",
        embedding=blend((1, 0.6), (2, 1.0)),
        brand="Sockit",
        category_path=["Wear", "Socks"],
    )
    # not relevant at all: only a pin can bring it in
    ItemFactory(external_id="kettle", embedding=topic(5), brand="Boil", category_path=["Kitchen"])


def _ids(api, **params):
    response = api.get(URL, {"limit": 5, **params})
    assert response.status_code == 200, response.content
    return [i["id"] for i in response.json()["items"]], response.json()["items"]


def _promote(**fields):
    fields.setdefault("name", "test")
    fields.setdefault("starts_at", timezone.now() - timedelta(hours=1))
    return Promotion.objects.create(**fields)


def test_brand_boost_lifts_the_brand_and_marks_it_promoted(api, shop):
    assert "sock" not in _ids(api)[0]
    promo = _promote(target_type="brand", brand="Sockit", boost=3.0)
    ids, items = _ids(api)
    assert ids[0] == "sock"
    assert items[0]["reason"] == {"type": "promoted", "promotion_id": promo.pk}


def test_category_subtree_promotion_matches_items_below_it(api, shop):
    _promote(target_type="category", category_path=["Wear"], boost=3.0)
    assert _ids(api)[0][0] == "sock"


def test_pinned_item_takes_its_slot_even_when_retrieval_would_not_find_it(api, shop):
    kettle = ItemFactory._meta.model.objects.get(external_id="kettle")
    _promote(target_type="item", item=kettle, boost=1.0, pinned_slot=2)
    ids, _ = _ids(api)
    assert ids[1] == "kettle" and len(ids) == 5


def test_pinned_item_still_obeys_the_hard_filters(api, shop):
    kettle = ItemFactory._meta.model.objects.get(external_id="kettle")
    _promote(target_type="item", item=kettle, pinned_slot=1)
    assert "kettle" not in _ids(api, category="Wear")[0]
    assert "kettle" not in _ids(api, exclude="kettle")[0]
    kettle.in_stock = False
    kettle.save()
    assert "kettle" not in _ids(api)[0]


@pytest.mark.parametrize(
    "starts, ends, active, applies",
    [
        (-2, -1, True, False),  # ended an hour ago
        (1, 2, True, False),  # starts in an hour
        (-1, 1, True, True),  # live
        (-1, None, True, True),  # open-ended
        (-1, 1, False, False),  # switched off
    ],
)
def test_promotion_applies_only_inside_its_window_and_when_active(api, shop, starts, ends, active, applies):
    now = timezone.now()
    _promote(
        target_type="brand",
        brand="Sockit",
        boost=3.0,
        starts_at=now + timedelta(hours=starts),
        ends_at=now + timedelta(hours=ends) if ends is not None else None,
        is_active=active,
    )
    assert (_ids(api)[0][0] == "sock") is applies


def test_promotion_limited_to_some_surfaces_leaves_the_others_alone(api, shop):
    _promote(target_type="brand", brand="Sockit", boost=3.0, surface_scope="named", surfaces=["home"])
    assert _ids(api, surface="home")[0][0] == "sock"
    assert "sock" not in _ids(api, surface="pdp")[0]
    assert "sock" not in _ids(api)[0]


def test_promotion_model_refuses_inconsistent_rules():
    from django.core.exceptions import ValidationError

    now = timezone.now()
    bad = [
        Promotion(name="x", target_type="item", starts_at=now),
        Promotion(name="x", target_type="category", starts_at=now),
        Promotion(name="x", target_type="brand", brand="A", boost=0, starts_at=now),
        Promotion(name="x", target_type="brand", brand="A", starts_at=now, ends_at=now - timedelta(days=1)),
        Promotion(name="x", target_type="brand", brand="A", starts_at=now, pinned_slot=0),
        Promotion(
            name="x", target_type="brand", brand="A", starts_at=now, surface_scope="named", surfaces=[]
        ),
        Promotion(
            name="x", target_type="brand", brand="A", starts_at=now, surface_scope="all", surfaces=["home"]
        ),
    ]
    for promotion in bad:
        with pytest.raises(ValidationError):
            promotion.clean()


def test_starts_at_defaults_to_now():
    before = timezone.now()
    promotion = Promotion(name="x", target_type="brand", brand="A")
    assert before <= promotion.starts_at <= timezone.now()


def _search_ids(api):
    response = api.get("/api/v1/search", {"q": "warm socks", "limit": 5})
    assert response.status_code == 200, response.content
    return [i["id"] for i in response.json()["items"]]


def test_a_pin_on_all_surfaces_leaves_semantic_search_alone(api, shop):
    plain = _search_ids(api)
    kettle = ItemFactory._meta.model.objects.get(external_id="kettle")
    _promote(target_type="item", item=kettle, boost=1.0, pinned_slot=1, surface_scope="all")
    assert _ids(api)[0][0] == "kettle"  # it does apply to the other lists
    assert _search_ids(api) == plain


def test_a_pin_that_names_search_applies_to_semantic_search(api, shop):
    kettle = ItemFactory._meta.model.objects.get(external_id="kettle")
    _promote(
        target_type="item", item=kettle, boost=1.0, pinned_slot=1, surface_scope="all", surfaces=["search"]
    )
    assert _search_ids(api)[0] == "kettle"
    assert _ids(api)[0][0] == "kettle"


def test_existing_promotions_keep_their_surfaces_after_the_migration():
    import importlib

    from django.apps import apps

    migration = importlib.import_module("catalog.migrations.0007_fill_promotion_surfaces_explicit")
    start = timezone.now()
    # rows as they were before the scope existed: named surfaces, or none (= all)
    named = Promotion.objects.create(
        name="n", target_type="brand", brand="A", starts_at=start, surfaces=["home"]
    )
    everywhere = Promotion.objects.create(name="e", target_type="brand", brand="A", starts_at=start)
    migration.forwards(apps, None)
    named.refresh_from_db()
    everywhere.refresh_from_db()
    assert named.surface_scope == "named" and named.surfaces == ["home"]
    assert everywhere.surface_scope == "all"
    assert not everywhere.applies_to(surface="", search=True)

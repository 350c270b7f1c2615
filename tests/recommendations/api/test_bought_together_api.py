"""Bought together for an item and for a cart, through the API: the planted pair first, the fill and the
content fallback, the errors, and the served-list log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from recommendations.covisitation import covisitation_fold
from recommendations.models import ServedList
from tests.factories import EventFactory, ItemFactory, topic

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 1, 1, tzinfo=UTC)
URL = "/api/v1/recommendations/items/{}/bought-together"
CART = "/api/v1/recommendations/cart"


def order(user: str, items, *, day: int, event_type: str = "purchase") -> list[int]:
    return [
        EventFactory(user_id=user, item=item, event_type=event_type, timestamp=T0 + timedelta(days=day)).pk
        for item in items
    ]


@pytest.fixture
def shop():
    """phone is bought with case (by many) and with charger; charger is also bought with cable; lamp is
    only viewed with phone; mug has no events. Vectors: lamps near each other, the rest apart."""
    items = {
        name: ItemFactory(external_id=name, embedding=topic(i, jitter=0.1, seed=i))
        for i, name in enumerate(["phone", "case", "charger", "cable", "lamp", "mug"])
    }
    items["desk-lamp"] = ItemFactory(external_id="desk-lamp", embedding=topic(5, jitter=0.1, seed=99))
    pks = []
    for u in range(5):
        pks += order(f"a{u}", [items["phone"], items["case"]], day=u)
    pks += order("b", [items["phone"], items["charger"]], day=10)
    pks += order("c", [items["charger"], items["cable"]], day=11)
    pks += order("d", [items["phone"], items["lamp"]], day=12, event_type="view")
    covisitation_fold(event_pks=pks)
    return items


def _body(response):
    assert response.status_code == 200, response.content
    return response.json()


def test_bought_together_ranks_the_planted_partner_first_and_names_the_anchor(api, shop):
    body = _body(api.get(URL.format("phone"), {"limit": 3}))
    assert body["scenario"] == "bought_together"
    ids = [i["id"] for i in body["items"]]
    assert ids[:2] == ["case", "charger"]
    assert "phone" not in ids
    assert body["items"][0]["reason"] == {"type": "bought_together", "item_id": "phone"}
    # the viewed-together item fills after the bought ones
    assert ids[2] == "lamp" and body["items"][2]["reason"]["type"] == "viewed_together"


def test_item_without_covisitation_falls_back_to_content_neighbours(api, shop):
    body = _body(api.get(URL.format("mug"), {"limit": 2}))
    assert body["scenario"] == "bought_together_fallback_content"
    assert body["items"][0]["id"] == "desk-lamp"
    assert body["items"][0]["reason"] == {"type": "similar_to", "item_id": "mug"}


def test_bought_together_takes_the_common_filters(api, shop):
    ids = [i["id"] for i in _body(api.get(URL.format("phone"), {"limit": 3, "exclude": "case"}))["items"]]
    assert "case" not in ids and ids[0] == "charger"


def test_bought_together_for_an_unknown_item_is_a_404(api, shop):
    response = api.get(URL.format("nope"))
    assert response.status_code == 404 and "nope" in response.json()["detail"]


def test_cart_sums_its_items_neighbours_and_never_returns_them(api, shop):
    body = _body(api.post(CART, {"item_ids": ["phone", "charger"], "limit": 3}, format="json"))
    assert body["scenario"] == "cart"
    ids = [i["id"] for i in body["items"]]
    assert "phone" not in ids and "charger" not in ids
    assert set(ids[:2]) == {"case", "cable"}
    reasons = {i["id"]: i["reason"] for i in body["items"]}
    assert reasons["cable"] == {"type": "bought_together", "item_id": "charger"}
    assert reasons["case"] == {"type": "bought_together", "item_id": "phone"}


def test_cart_without_covisitation_falls_back_to_content(api, shop):
    body = _body(api.post(CART, {"item_ids": ["mug"], "limit": 1}, format="json"))
    assert body["scenario"] == "cart_fallback_content"


def test_cart_with_unknown_ids_is_a_400_naming_them(api, shop):
    response = api.post(CART, {"item_ids": ["phone", "ghost-1", "ghost-2"]}, format="json")
    assert response.status_code == 400
    message = response.json()["fields"]["item_ids"][0]
    assert "ghost-1" in message and "ghost-2" in message and "phone" not in message


def test_cart_of_more_than_100_items_is_a_400(api, shop):
    response = api.post(CART, {"item_ids": [f"x{i}" for i in range(101)]}, format="json")
    assert response.status_code == 400 and "item_ids" in response.json()["fields"]


@pytest.mark.parametrize("body", [{}, {"item_ids": []}, {"item_ids": "phone"}, ["phone"]])
def test_malformed_cart_is_a_400(api, shop, body):
    assert api.post(CART, body, format="json").status_code == 400


def test_empty_history_gives_the_fallback_not_an_error(api):
    ItemFactory(external_id="solo", embedding=topic(1))
    ItemFactory(external_id="other", embedding=topic(1, jitter=0.2, seed=3))
    body = _body(api.get(URL.format("solo")))
    assert body["scenario"] == "bought_together_fallback_content"
    assert [i["id"] for i in body["items"]] == ["other"]


def test_empty_catalog_cart_is_a_400_and_a_lone_item_gets_an_empty_list(api):
    assert api.post(CART, {"item_ids": ["a"]}, format="json").status_code == 400
    ItemFactory(external_id="alone", embedding=None, embedding_model="")
    body = _body(api.get(URL.format("alone")))
    assert body["items"] == []


def test_answers_are_logged_with_their_scenario(api, shop):
    body = _body(api.get(URL.format("phone"), {"surface": "pdp"}))
    logged = ServedList.objects.get(recommendation_id=body["recommendation_id"])
    assert logged.scenario == "bought_together" and logged.surface == "pdp"
    assert logged.item_ids == [i["id"] for i in body["items"]]
    assert logged.reasons[0] == {"type": "bought_together", "item_id": "phone"}
    assert logged.model_version == "covisitation"


def test_a_new_event_changes_the_answer_once_folded(api, shop):
    before = [i["id"] for i in _body(api.get(URL.format("cable"), {"limit": 2}))["items"]]
    assert before[0] == "charger"
    pks = []
    for u in range(3):
        pks += order(f"e{u}", [shop["cable"], shop["mug"]], day=20 + u)
    covisitation_fold(event_pks=pks)
    after = [i["id"] for i in _body(api.get(URL.format("cable"), {"limit": 2}))["items"]]
    assert after[0] == "mug"

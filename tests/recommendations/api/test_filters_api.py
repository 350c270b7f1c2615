"""The options every scenario takes: limit, surface, exclude, category, min_price, max_price."""

from __future__ import annotations

from decimal import Decimal

import pytest

from recommendations.models import ServedList
from tests.factories import ItemFactory, UserProfileFactory, topic

pytestmark = pytest.mark.django_db
URL = "/api/v1/recommendations/users/u1"


@pytest.fixture
def catalog():
    UserProfileFactory(external_id="u1", embedding=topic(0))
    for i in range(120):
        ItemFactory(
            external_id=f"it-{i}",
            embedding=topic(i % 50, jitter=0.5, seed=i),
            category_path=["Electronics", "Phones"] if i % 3 == 0 else ["Home", "Lamps"],
            price=Decimal(i),
        )


def _ids(response):
    assert response.status_code == 200, response.content
    return [item["id"] for item in response.json()["items"]]


def test_limit_defaults_to_ten_and_is_capped_at_one_hundred(api, catalog):
    assert len(_ids(api.get(URL))) == 10
    assert len(_ids(api.get(URL, {"limit": 1000}))) == 100


def test_filters_restrict_every_item_of_the_answer(api, catalog):
    body = api.get(
        URL, {"category": "Electronics > Phones", "min_price": "10", "max_price": "60.5", "limit": 50}
    ).json()
    prices = [Decimal(i["price"]) for i in body["items"]]
    assert body["items"] and all(i["category_path"] == ["Electronics", "Phones"] for i in body["items"])
    assert all(Decimal(10) <= p <= Decimal("60.5") for p in prices)
    assert len(prices) == len([i for i in range(10, 61) if i % 3 == 0])


def test_excluded_items_never_appear(api, catalog):
    first = _ids(api.get(URL, {"limit": 3}))
    again = _ids(api.get(URL, {"limit": 3, "exclude": ",".join(first)}))
    assert not set(first) & set(again)


@pytest.mark.parametrize(
    "params, field",
    [
        ({"limit": 0}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"limit": -5}, "limit"),
        ({"min_price": "abc"}, "min_price"),
        ({"min_price": "-1"}, "min_price"),
        ({"max_price": "NaN"}, "max_price"),
        ({"max_price": "Infinity"}, "max_price"),
        ({"max_price": "1e40"}, "max_price"),
        ({"min_price": "50", "max_price": "10"}, "min_price"),
        ({"category": "Electronics >  > Phones"}, "category"),
        ({"category": " > ".join(["x"] * 11)}, "category"),
        ({"surface": "home page<script>"}, "surface"),
        ({"surface": "x" * 101}, "surface"),
        ({"exclude": "it-1,no-such-item"}, "exclude"),
        ({"session_id": "s" * 129}, "session_id"),
    ],
)
def test_absurd_options_are_a_400_naming_the_field(api, catalog, params, field):
    response = api.get(URL, params)
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["error"] == "invalid" and field in body["fields"]
    assert ServedList.objects.count() == 0  # nothing served, nothing logged


def test_unknown_exclude_ids_are_named_in_the_error(api, catalog):
    response = api.get(URL, {"exclude": "it-1,ghost-7"})
    assert "ghost-7" in response.json()["fields"]["exclude"][0]
    assert "it-1" not in response.json()["fields"]["exclude"][0]


def test_same_options_apply_to_similar_trending_and_session(api, catalog):
    for response in [
        api.get("/api/v1/recommendations/items/it-0/similar", {"category": "Home", "limit": 5}),
        api.get("/api/v1/recommendations/trending", {"category": "Home", "limit": 5}),
        api.post(
            "/api/v1/recommendations/session",
            {"item_ids": ["it-0"], "category": "Home", "limit": 5},
            format="json",
        ),
    ]:
        items = response.json()["items"]
        assert response.status_code == 200 and len(items) == 5
        assert all(i["category_path"][0] == "Home" for i in items)
    assert api.get("/api/v1/recommendations/trending", {"limit": 0}).status_code == 400

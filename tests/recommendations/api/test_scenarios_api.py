"""Similar items, session, trending and semantic search through the API."""

from __future__ import annotations

import json
from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone

from recommendations.services import item_popularity_refresh
from tests.factories import EventFactory, ItemFactory, topic

pytestmark = pytest.mark.django_db


def _ids(response):
    assert response.status_code == 200, response.content
    return [item["id"] for item in response.json()["items"]]


@pytest.fixture
def shop():
    shoes = [ItemFactory(external_id=f"shoe-{i}", embedding=topic(1, jitter=0.2, seed=i)) for i in range(5)]
    lamps = [ItemFactory(external_id=f"lamp-{i}", embedding=topic(2, jitter=0.2, seed=i)) for i in range(5)]
    return shoes, lamps


def test_similar_items_exclude_the_item_and_say_what_they_are_similar_to(api, shop):
    body = api.get("/api/v1/recommendations/items/shoe-0/similar", {"limit": 4}).json()
    assert body["scenario"] == "similar"
    ids = [i["id"] for i in body["items"]]
    assert "shoe-0" not in ids and set(ids) == {"shoe-1", "shoe-2", "shoe-3", "shoe-4"}
    assert all(i["reason"] == {"type": "similar_to", "item_id": "shoe-0"} for i in body["items"])


def test_similar_for_an_unknown_item_is_a_404_in_the_error_shape(api, shop):
    response = api.get("/api/v1/recommendations/items/no-such-item/similar")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found" and "no-such-item" in response.json()["detail"]


def test_similar_for_an_item_without_vector_falls_back_to_trending_in_its_filters(api, shop):
    ItemFactory(external_id="unembedded", embedding=None)
    body = api.get("/api/v1/recommendations/items/unembedded/similar").json()
    assert body["scenario"] == "trending" and "unembedded" not in [i["id"] for i in body["items"]]


def test_session_weighs_the_newest_item_most_and_excludes_session_items(api, shop):
    shoes, lamps = shop
    response = api.post(
        "/api/v1/recommendations/session",
        {"session_id": "s-1", "item_ids": ["shoe-0", "lamp-0"], "limit": 3},
        format="json",
    )
    body = response.json()
    assert body["scenario"] == "session"
    ids = [i["id"] for i in body["items"]]
    assert ids[0].startswith("lamp-") and "lamp-0" not in ids and "shoe-0" not in ids
    assert body["items"][0]["reason"] == {"type": "because_you_viewed", "item_id": "lamp-0"}


def test_session_options_may_come_in_the_query_string(api, shop):
    response = api.post("/api/v1/recommendations/session?limit=2", {"item_ids": ["shoe-0"]}, format="json")
    assert len(_ids(response)) == 2


def test_session_with_unknown_items_is_a_400_naming_them(api, shop):
    response = api.post("/api/v1/recommendations/session", {"item_ids": ["shoe-0", "ghost"]}, format="json")
    assert response.status_code == 400
    assert "ghost" in response.json()["fields"]["item_ids"][0]


@pytest.mark.parametrize(
    "body",
    [{}, {"item_ids": []}, {"item_ids": "shoe-0"}, {"item_ids": [1, 2]}, ["shoe-0"]],
)
def test_session_with_a_malformed_body_is_a_400(api, shop, body):
    response = api.post("/api/v1/recommendations/session", body, format="json")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid"


def test_trending_orders_by_decayed_popularity_overall_and_per_category(api):
    phone = ItemFactory(external_id="phone", category_path=["Electronics", "Phones"], embedding=topic(1))
    laptop = ItemFactory(external_id="laptop", category_path=["Electronics", "Laptops"], embedding=topic(2))
    sofa = ItemFactory(external_id="sofa", category_path=["Home", "Sofas"], embedding=topic(3))
    now = timezone.now()
    for n in range(3):
        EventFactory(item=phone, user_id=f"p{n}", timestamp=now - timedelta(hours=1))
    for n in range(6):  # more events, but three weeks old: decayed below the phone's
        EventFactory(item=sofa, user_id=f"s{n}", timestamp=now - timedelta(days=21))
    EventFactory(item=laptop, user_id="l0", timestamp=now - timedelta(hours=2))
    item_popularity_refresh()
    assert _ids(api.get("/api/v1/recommendations/trending")) == ["phone", "laptop", "sofa"]
    assert _ids(api.get("/api/v1/recommendations/trending", {"category": "Electronics"})) == [
        "phone",
        "laptop",
    ]
    assert _ids(api.get("/api/v1/recommendations/trending", {"category": "Electronics > Laptops"})) == [
        "laptop"
    ]


def test_trending_in_a_new_shop_shows_the_newest_items(api):
    ItemFactory(external_id="older", published_at=timezone.now() - timedelta(days=3), embedding=topic(1))
    ItemFactory(external_id="newer", published_at=timezone.now() - timedelta(days=1), embedding=topic(2))
    body = api.get("/api/v1/recommendations/trending").json()
    assert [i["id"] for i in body["items"]] == ["newer", "older"]
    assert body["items"][0]["reason"] == {"type": "new_arrival"}


@pytest.mark.slow
def test_search_embeds_the_query_with_the_catalog_model(api):
    from catalog.embedding import get_embedder

    titles = {
        "shoe": "Trail running shoes for men, lightweight",
        "lamp": "Brass desk lamp with warm LED bulb",
        "kettle": "Electric kettle 1.7 litre stainless steel",
    }
    vectors = get_embedder().encode(list(titles.values()))
    for (item_id, title), vector in zip(titles.items(), vectors, strict=True):
        ItemFactory(external_id=item_id, title=title, embedding=np.asarray(vector))
    body = api.get("/api/v1/search", {"q": "sneakers for jogging"}).json()
    assert body["scenario"] == "search"
    assert body["items"][0]["id"] == "shoe"
    assert body["items"][0]["reason"] == {"type": "matches_query"}


@pytest.mark.parametrize("query", [{}, {"q": ""}, {"q": "   "}, {"q": "x" * 501}])
def test_search_without_a_usable_query_is_a_400(api, query):
    response = api.get("/api/v1/search", query)
    assert response.status_code == 400
    assert "q" in response.json()["fields"]


def test_empty_catalog_gives_empty_lists_not_errors(api):
    for url in ["/api/v1/recommendations/users/anyone", "/api/v1/recommendations/trending"]:
        response = api.get(url)
        assert response.status_code == 200 and response.json()["items"] == []


def test_every_endpoint_needs_an_api_key(anon_api, shop):
    for method, url in [
        ("get", "/api/v1/recommendations/users/u1"),
        ("get", "/api/v1/recommendations/items/shoe-0/similar"),
        ("post", "/api/v1/recommendations/session"),
        ("get", "/api/v1/recommendations/trending"),
        ("get", "/api/v1/search?q=shoes"),
    ]:
        assert getattr(anon_api, method)(url).status_code == 401


def test_session_exclude_with_a_lone_surrogate_is_a_400_naming_exclude(api, shop):
    body = json.dumps({"item_ids": ["shoe-0"], "exclude": ["emoji cut \ud83d"]})
    response = api.post("/api/v1/recommendations/session", body, content_type="application/json")
    assert response.status_code == 400
    assert "surrogate" in response.json()["fields"]["exclude"][0]

"""The storefront's new lists and endpoints: reasons for a person, bought together, the cart and its
recommendations, impressions, semantic search and the category filter."""

from __future__ import annotations

import json
import uuid

import pytest

from interactions.models import Event
from recommendations.models import ServedList
from tests.factories import ItemFactory, leading

pytestmark = pytest.mark.django_db


@pytest.fixture
def items():
    # a shared component plus one axis each: related, but not near-duplicates (serving collapses those)
    lamps = [
        ItemFactory(
            published_at=None,
            title=f"Lamp {n}",
            embedding=leading(0.5, *([0.0] * n), 1.0),
            category_path=["Home", "Lamps"],
        )
        for n in range(5)
    ]
    books = [
        ItemFactory(
            published_at=None,
            title=f"Book {n}",
            embedding=leading(*([0.0] * (n + 6)), 1.0),
            category_path=["Books"],
        )
        for n in range(3)
    ]
    return lamps + books


def post(client, path, body):
    return client.post(path, json.dumps(body), content_type="application/json")


def test_a_viewed_item_is_named_in_the_reason_of_the_visitors_recommendations(client, items):
    client.get("/")
    post(
        client,
        "/storefront/events",
        {"events": [{"event_id": "v", "item_id": items[0].external_id, "event_type": "view"}]},
    )
    body = client.get("/storefront/recommendations/user?limit=4").json()
    texts = {i["reason_text"] for i in body["items"]}
    assert f"Because you viewed {items[0].title}" in texts, body["items"]


def test_similar_items_say_which_item_they_are_similar_to_and_carry_a_picture(client, items):
    client.get("/")
    body = client.get(f"/storefront/recommendations/similar?item={items[0].external_id}&limit=3").json()
    assert {i["reason_text"] for i in body["items"]} == {f"Similar to {items[0].title}"}
    assert all(i["image_url"].startswith("/storefront/image.svg?c=Home%2FLamps") for i in body["items"])


def test_bought_together_is_served_and_logged_for_the_visitor(client, items):
    client.get("/")
    body = client.get(
        f"/storefront/recommendations/bought_together?item={items[0].external_id}&limit=3"
    ).json()
    assert body["items"] and items[0].external_id not in [i["id"] for i in body["items"]]
    served = ServedList.objects.get(recommendation_id=body["recommendation_id"])
    assert served.session_id == client.session.session_key and served.surface == "bought_together"
    assert served.latency_ms > 0  # the time the visitor waited for it


def test_exclude_leaves_items_out(client, items):
    client.get("/")
    first = client.get("/storefront/recommendations/trending?limit=3").json()
    shown = [i["id"] for i in first["items"]]
    second = client.get(f"/storefront/recommendations/trending?limit=3&exclude={','.join(shown)}").json()
    assert not set(shown) & {i["id"] for i in second["items"]}


def test_add_to_cart_fills_the_cart_page_and_cart_recommendations_leave_the_cart_out(client, items):
    client.get("/")
    assert b"Your cart is empty" in client.get("/cart").content
    post(
        client,
        "/storefront/events",
        {"events": [{"event_id": "c", "item_id": items[1].external_id, "event_type": "add_to_cart"}]},
    )
    page = client.get("/cart").content.decode()
    assert items[1].title in page and 'data-recsys="cart"' in page
    body = client.get("/storefront/recommendations/cart?limit=4").json()
    assert body["scenario"].startswith("cart")
    assert items[1].external_id not in [i["id"] for i in body["items"]]
    assert (
        ServedList.objects.get(recommendation_id=body["recommendation_id"]).user_id
        == client.session["visitor_id"]
    )


def test_impressions_are_recorded_on_the_visitors_own_lists_only(client, items):
    client.get("/")
    rec = client.get("/storefront/recommendations/trending?limit=4").json()["recommendation_id"]
    answer = post(
        client,
        "/storefront/impressions",
        {"impressions": [{"recommendation_id": rec, "positions": [2, 1, 2, 40]}]},
    )
    assert answer.status_code == 200 and answer.json()["recorded"] == 1
    # a position past the list's end is ignored; repeated reports are a set
    assert ServedList.objects.get(recommendation_id=rec).seen_positions == [1, 2]
    post(client, "/storefront/impressions", {"impressions": [{"recommendation_id": rec, "positions": [3]}]})
    assert ServedList.objects.get(recommendation_id=rec).seen_positions == [1, 2, 3]

    stranger = client.__class__()
    stranger.get("/")
    answer = post(
        stranger, "/storefront/impressions", {"impressions": [{"recommendation_id": rec, "positions": [4]}]}
    )
    assert answer.status_code == 200 and answer.json()["recorded"] == 0
    assert ServedList.objects.get(recommendation_id=rec).seen_positions == [1, 2, 3]


def test_impressions_reject_bad_entries_naming_the_field(client, items):
    client.get("/")
    answer = post(
        client,
        "/storefront/impressions",
        {
            "impressions": [
                {"recommendation_id": "nope", "positions": [1]},
                {"recommendation_id": str(uuid.uuid4()), "positions": [0, True]},
            ]
        },
    )
    assert answer.status_code == 400
    rejected = answer.json()["rejected"]
    assert "recommendation_id" in rejected[0]["errors"] and "positions" in rejected[1]["errors"]
    assert post(client, "/storefront/impressions", {"impressions": []}).json()["fields"]["impressions"]
    assert client.post("/storefront/impressions", "{", content_type="application/json").status_code == 400


def test_search_answers_with_a_logged_list_narrowed_by_category(client, items):
    page = client.get("/catalog", {"q": "a lamp for the living room", "category": "Books"})
    assert page.status_code == 200
    served = ServedList.objects.get(surface="search")
    assert served.session_id == client.session.session_key
    assert served.latency_ms > 0  # the time the search page took
    titles = set(ServedList.objects.get().item_ids)
    assert titles and titles <= {i.external_id for i in items[5:]}  # only books
    html = page.content.decode()
    assert f'data-recsys-served="{served.recommendation_id}"' in html
    assert f"?rec={served.recommendation_id}&amp;pos=1&amp;surface=search" in html


def test_category_filter_lists_departments_and_narrows_the_catalog(client, items):
    html = client.get("/catalog", {"category": "Books"}).content.decode()
    assert '<option value="Books" selected>' in html and '<option value="Home">' in html
    assert "Book 1" in html and "Lamp 1" not in html
    assert "/storefront/image.svg?c=Books" in html


def test_item_page_names_the_item_in_similar_and_has_bought_together(client, items):
    html = client.get(f"/items/{items[0].external_id}").content.decode()
    assert f"Similar to {items[0].title}" in html
    assert 'data-recsys="bought_together"' in html
    assert not Event.objects.exists()  # the page itself logs nothing: the client does

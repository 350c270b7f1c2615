"""The reference storefront's pages and its same-origin endpoints (no API key in the browser)."""

from __future__ import annotations

import json
import uuid

import pytest
from django.test import Client

from interactions.models import Event
from recommendations.models import ServedList
from tests.factories import ItemFactory, leading

pytestmark = pytest.mark.django_db


@pytest.fixture
def items():
    # a shared component plus one axis each: related, but not near-duplicates (serving collapses those)
    return [
        ItemFactory(
            published_at=None,
            title=f"Lamp {n}",
            embedding=leading(0.5, *([0.0] * n), 1.0),
            category_path=["Home"],
        )
        for n in range(5)
    ]


def test_pages_render_home_catalog_and_item(client, items):
    assert b'data-recsys="user"' in client.get("/").content
    assert b'data-recsys="trending"' in client.get("/").content
    catalog = client.get("/catalog")
    assert catalog.status_code == 200 and b"Lamp 3" in catalog.content
    page = client.get(f"/items/{items[0].external_id}")
    assert page.status_code == 200 and b'data-recsys="similar"' in page.content
    assert client.get("/items/nope").status_code == 404


def test_inactive_items_have_no_page(client, items):
    items[0].is_active = False
    items[0].save()
    assert client.get(f"/items/{items[0].external_id}").status_code == 404


def test_similar_items_endpoint_serves_and_logs_a_list_for_the_visitor(client, items):
    client.get("/")
    response = client.get(
        f"/storefront/recommendations/similar?item={items[0].external_id}&surface=pdp&limit=3"
    )
    assert response.status_code == 200
    body = response.json()
    assert len(body["items"]) == 3
    assert items[0].external_id not in [i["id"] for i in body["items"]]
    served = ServedList.objects.get(recommendation_id=body["recommendation_id"])
    assert served.surface == "pdp"
    assert served.scenario == "similar"


def test_user_and_trending_endpoints_answer_for_a_new_visitor(client, items):
    for kind in ("user", "trending"):
        response = client.get(f"/storefront/recommendations/{kind}?limit=4")
        assert response.status_code == 200
        assert "recommendation_id" in response.json()


def test_recommendation_endpoint_rejects_bad_parameters(client, items):
    assert client.get("/storefront/recommendations/user?limit=0").json()["fields"] == {
        "limit": ["Must be between 1 and 24."]
    }
    assert client.get("/storefront/recommendations/other").status_code == 400
    assert client.get("/storefront/recommendations/similar?item=unknown").json()["fields"]["item"]


def test_events_endpoint_stores_clicks_with_the_visitors_ids_not_the_browsers(client, items):
    client.get("/")
    rec = uuid.UUID(client.get("/storefront/recommendations/user").json()["recommendation_id"])
    body = {
        "events": [
            {
                "event_id": "e1",
                "item_id": items[1].external_id,
                "event_type": "click",
                "recommendation_id": str(rec),
                "surface": "home",
                "position": 2,
                "user_id": "someone-else",
                "timestamp": "2001-01-01T00:00:00Z",
            }
        ]
    }
    response = client.post("/storefront/events", json.dumps(body), content_type="application/json")
    assert response.status_code == 200
    assert response.json()["accepted"] == 1
    event = Event.objects.get()
    assert event.user_id == client.session["visitor_id"]
    assert (event.recommendation_id, event.surface, event.position) == (rec, "home", 2)
    assert event.timestamp.year > 2001
    assert event.event_id.endswith(":e1")


def test_events_endpoint_refuses_purchases_and_bad_events_and_keeps_the_valid_ones(client, items):
    client.get("/")
    body = {
        "events": [
            {"event_id": "p", "item_id": items[0].external_id, "event_type": "purchase"},
            {"event_id": "v", "item_id": items[0].external_id, "event_type": "view"},
            {
                "event_id": "x",
                "item_id": items[0].external_id,
                "event_type": "click",
                "recommendation_id": "not-a-uuid",
            },
        ]
    }
    response = client.post("/storefront/events", json.dumps(body), content_type="application/json")
    assert response.status_code == 200
    assert [r["index"] for r in response.json()["rejected"]] == [0, 2]
    assert "recommendation_id" in response.json()["rejected"][1]["errors"]
    assert list(Event.objects.values_list("event_type", flat=True)) == ["view"]
    assert client.post("/storefront/events", "nope", content_type="application/json").status_code == 400


def test_events_endpoint_requires_the_csrf_token():
    browser = Client(enforce_csrf_checks=True)
    browser.get("/")
    body = json.dumps({"events": [{"event_id": "e", "item_id": "x", "event_type": "view"}]})
    assert browser.post("/storefront/events", body, content_type="application/json").status_code == 403
    token = browser.cookies["csrftoken"].value
    ok = browser.post("/storefront/events", body, content_type="application/json", HTTP_X_CSRFTOKEN=token)
    assert ok.status_code == 200

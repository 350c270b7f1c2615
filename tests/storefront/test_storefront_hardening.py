"""The reference storefront against hostile or careless browsers: bad characters, bad bodies, cookieless
clients and forged recommendation ids (issue 12, finding 3)."""

from __future__ import annotations

import json

import pytest

from interactions.models import Event
from tests.factories import ItemFactory, leading

pytestmark = pytest.mark.django_db


@pytest.fixture
def items():
    return [
        ItemFactory(
            published_at=None,
            title=f"Lamp {n}",
            embedding=leading(0.5, *([0.0] * n), 1.0),
            category_path=["Home"],
        )
        for n in range(5)
    ]


def _post_events(client, body: str):
    return client.post("/storefront/events", body, content_type="application/json")


@pytest.mark.parametrize(
    "url",
    [
        "/items/a%00b",
        "/items/a%01b",
        "/catalog?category=a%00b",
        "/catalog?page=%00",
        "/?x%00=1",
    ],
)
def test_a_control_character_in_a_page_url_is_a_plain_400(client, items, url):
    response = client.get(url)
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/plain")
    assert b"control characters" in response.content


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("/storefront/recommendations/similar?item=a%00b", "item"),
        ("/storefront/recommendations/user?surface=a%00b", "surface"),
        ("/storefront/recommendations/trending?limit=%1f", "limit"),
        ("/storefront/recommendations/a%00b", "path"),
    ],
)
def test_a_control_character_in_an_endpoint_url_is_a_json_400_naming_the_field(client, items, url, field):
    client.get("/")
    response = client.get(url)
    assert response.status_code == 400
    assert list(response.json()["fields"]) == [field]


def test_a_control_character_in_the_events_query_is_a_json_400(client, items):
    client.get("/")
    body = json.dumps({"events": [{"event_id": "e", "item_id": items[0].external_id, "event_type": "view"}]})
    response = client.post("/storefront/events?x=%00", body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["fields"] == {"x": ["Must not contain control characters or lone surrogates."]}
    assert not Event.objects.exists()


def test_deeply_nested_json_on_the_events_endpoint_is_a_400(client, items):
    client.get("/")
    for depth in (100_000, 1_000_000):
        response = _post_events(client, "[" * depth + "]" * depth)
        assert response.status_code == 400
        assert "events" in response.json()["fields"]
        response = _post_events(client, '{"events": [' + "{" * depth + "}" * depth + "]}")
        assert response.status_code == 400


def test_a_surrogate_or_nul_in_an_event_rejects_that_event_and_keeps_the_others(client, items):
    client.get("/")
    sku = items[0].external_id
    body = (
        '{"events": ['
        f'{{"event_id": "\\ud800", "item_id": "{sku}", "event_type": "view"}},'
        f'{{"event_id": "ok", "item_id": "{sku}", "event_type": "view"}},'
        f'{{"event_id": "n", "item_id": "{sku}", "event_type": "view", "surface": "a\\u0000b"}}'
        "]}"
    )
    response = _post_events(client, body)
    assert response.status_code == 200, response.content
    assert response.json()["accepted"] == 1
    assert [(r["index"], list(r["errors"])) for r in response.json()["rejected"]] == [
        (0, ["event_id"]),
        (2, ["surface"]),
    ]
    only_surrogates = '{"events": [{"event_id": "\\udfff", "item_id": "x", "event_type": "view"}]}'
    assert _post_events(client, only_surrogates).status_code == 400
    assert _post_events(client, '{"events": [{"event_id": "e", "position": NaN}]}').status_code == 400
    assert Event.objects.count() == 1


def test_cookieless_requests_create_no_session_row_and_log_no_list(items):
    from django.contrib.sessions.models import Session
    from django.test import Client

    from recommendations.models import ServedList

    for kind, times in (("trending", 100), ("user", 20), (f"similar?item={items[0].external_id}", 20)):
        for _ in range(times):
            response = Client().get(f"/storefront/recommendations/{kind}")  # a new cookie jar each time
            assert response.status_code == 200
            assert response.json()["items"]
            assert "sessionid" not in response.cookies
    body = json.dumps({"events": [{"event_id": "e", "item_id": items[0].external_id, "event_type": "view"}]})
    refused = Client().post("/storefront/events", body, content_type="application/json")
    assert refused.status_code == 400
    assert list(refused.json()["fields"]) == ["session"]
    bogus = Client()
    bogus.cookies["sessionid"] = "no-such-session-key-0123456789abc"
    assert bogus.get("/storefront/recommendations/trending").status_code == 200
    assert Session.objects.count() == 0
    assert ServedList.objects.count() == 0
    assert not Event.objects.exists()


def test_a_browser_that_keeps_its_cookie_has_one_session_and_its_lists_logged_under_its_visitor(items):
    from django.contrib.sessions.models import Session
    from django.test import Client

    from recommendations.models import ServedList

    browser = Client()
    browser.get("/")
    visitor = browser.session["visitor_id"]
    for kind in ("trending", "user", f"similar?item={items[0].external_id}"):
        browser.get(f"/storefront/recommendations/{kind}")
    assert Session.objects.count() == 1
    assert set(ServedList.objects.values_list("user_id", "session_id")) == {
        (visitor, browser.session.session_key)
    }


def _click(client, item, rec_id: str, event_id: str):
    body = {
        "events": [
            {"event_id": event_id, "item_id": item.external_id, "event_type": "click",
             "recommendation_id": rec_id, "surface": "home", "position": 1}
        ]
    }  # fmt: skip
    return client.post("/storefront/events", json.dumps(body), content_type="application/json")


def test_only_lists_served_to_the_visitor_are_credited_others_are_stored_without_the_id(items):
    import uuid

    from django.test import Client

    from analytics.attribution import events_attribute_recent
    from analytics.models import Attribution

    me, other = Client(), Client()
    me.get("/")
    other.get("/")
    mine = me.get("/storefront/recommendations/trending").json()["recommendation_id"]
    theirs = other.get("/storefront/recommendations/user").json()["recommendation_id"]
    anonymous_api_list = Client().get("/storefront/recommendations/trending").json()["recommendation_id"]

    answers = [
        _click(me, items[1], mine, "own"),
        _click(me, items[2], theirs, "someone-elses"),
        _click(me, items[3], str(uuid.uuid4()), "forged"),
        _click(me, items[4], anonymous_api_list, "unlogged"),
    ]

    assert [a.status_code for a in answers] == [200] * 4
    stored = {e.event_id.split(":")[1]: e for e in Event.objects.all()}
    assert str(stored["own"].recommendation_id) == mine
    for name in ("someone-elses", "forged", "unlogged"):
        assert (stored[name].recommendation_id, stored[name].surface, stored[name].position) == (
            None,
            "",
            None,
        )
    events_attribute_recent()
    assert [str(r) for r in Attribution.objects.values_list("recommendation_id", flat=True)] == [mine]
    assert [a.json()["recommendation_ids_dropped"] for a in answers] == [0, 1, 1, 1]

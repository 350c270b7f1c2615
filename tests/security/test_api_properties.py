"""Property tests (hypothesis) of the API and the storefront's same-origin endpoints with hostile input
(tests/security/hostile.py), through the real views and database: whatever a batch holds, the answer is not
a 5xx and the valid row beside a bad one is stored; whatever a query string holds, no 5xx.

Schemathesis (test_api_fuzz.py) draws from the OpenAPI schema, whose strings are valid UTF-8 and whose
dates carry sane offsets; these draw what the schema cannot describe. Examples per property:
RECSYS_PROPERTY_EXAMPLES (CI: 200), halved here as each one is a request."""

from __future__ import annotations

import json
import os

import pytest
from django.conf import settings as django_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catalog.models import Item
from interactions.models import Event
from tests.factories import ItemFactory, topic
from tests.security.hostile import (
    hostile_events,
    hostile_items,
    hostile_list_options,
    now_plus,
    query_string,
)

pytestmark = pytest.mark.django_db
EXAMPLES = max(10, int(os.environ.get("RECSYS_PROPERTY_EXAMPLES", "200")) // 2)
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
GOOD_EVENT = {
    "event_id": "good",
    "user_id": "u",
    "item_id": "i",
    "event_type": "view",
    "timestamp": "2025-01-01",
}


def post_json(client, path: str, body) -> object:
    """JSON as a JavaScript client writes it (\\uXXXX escapes), so that a lone surrogate can travel."""
    return client.post(path, json.dumps(body), content_type="application/json")


@SETTINGS
@given(bad=hostile_items)
def test_an_item_batch_never_answers_5xx_and_keeps_the_valid_item(api, bad):
    response = post_json(api, "/api/v1/items", {"items": [bad, {"id": "good", "title": "Good"}]})
    assert response.status_code == 200, response.content
    assert Item.objects.filter(external_id="good").exists()
    if not response.json()["rejected"] and bad.get("published_at"):
        stored = Item.objects.get(external_id=bad["id"].strip())
        assert stored.published_at <= now_plus(django_settings.RECSYS_MAX_FUTURE_SKEW_SECONDS)


@SETTINGS
@given(bad=hostile_events)
def test_an_event_batch_never_answers_5xx_and_keeps_the_valid_event(api, bad):
    response = post_json(api, "/api/v1/events", {"events": [bad, GOOD_EVENT]})
    assert response.status_code == 200, response.content
    assert Event.objects.filter(event_id="good").exists()


@pytest.fixture
def few_items(db):
    return [ItemFactory(external_id=f"sku-{n}", embedding=topic(n % 3)) for n in range(4)]


@SETTINGS
@given(
    path=st.sampled_from(
        [
            "/api/v1/recommendations/trending",
            "/api/v1/recommendations/users/u-1",
            "/api/v1/recommendations/items/sku-1/similar",
            "/api/v1/search?q=lamp",
        ]
    ),
    options=hostile_list_options,
)
def test_a_recommendation_query_string_never_answers_5xx(api, few_items, path, options):
    separator = "&" if "?" in path else "?"
    response = api.get(f"{path}{separator}{query_string(options)}")
    assert response.status_code < 500, response.content


@SETTINGS
@given(options=hostile_list_options, item_ids=st.lists(st.sampled_from(["sku-1", "sku-2"]), min_size=1))
def test_a_session_body_never_answers_5xx(api, few_items, options, item_ids):
    response = post_json(api, "/api/v1/recommendations/session", {"item_ids": item_ids, **options})
    assert response.status_code < 500, response.content


@SETTINGS
@given(kind=st.sampled_from(["user", "trending", "similar", "other"]), options=hostile_list_options)
def test_a_storefront_query_string_never_answers_5xx(client, few_items, kind, options):
    response = client.get(f"/storefront/recommendations/{kind}?{query_string(options)}")
    assert response.status_code < 500, response.content


@SETTINGS
@given(events=st.lists(hostile_events, min_size=1, max_size=3))
def test_storefront_events_never_answer_5xx(client, few_items, events):
    response = post_json(client, "/storefront/events", {"events": events})
    assert response.status_code < 500, response.content

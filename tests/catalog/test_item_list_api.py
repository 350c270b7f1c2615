"""`GET /api/v1/items`: a page of active items with the recommendation filters, keyset paging."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.factories import ItemFactory, topic
from tests.security.hostile import hostile_list_options, hostile_text, query_string

pytestmark = pytest.mark.django_db
URL = "/api/v1/items"
BASELINE = json.loads((Path(__file__).parent / "query_counts.json").read_text())


@pytest.fixture
def shop():
    ItemFactory(external_id="lamp-1", category_path=["Home", "Lamps"], price=30)
    ItemFactory(external_id="lamp-2", category_path=["Home", "Lamps"], price=80, in_stock=False)
    ItemFactory(external_id="rug-1", category_path=["Home", "Rugs"], price=120)
    ItemFactory(external_id="rake-1", category_path=["Garden"], price=15, embedding=None)
    ItemFactory(external_id="homeware-1", category_path=["Homeware"], price=5)  # not under "Home"
    ItemFactory(external_id="gone-1", category_path=["Home"], is_active=False)


def _ids(api, **params):
    response = api.get(URL, params)
    assert response.status_code == 200, response.content
    return [i["id"] for i in response.json()["items"]], response.json()


def test_lists_active_items_by_id_with_their_fields(api, shop):
    ids, body = _ids(api)
    assert ids == ["homeware-1", "lamp-1", "lamp-2", "rake-1", "rug-1"]
    assert body["next_after"] is None
    lamp = body["items"][1]
    assert lamp["category_path"] == ["Home", "Lamps"] and lamp["price"] == "30.00" and lamp["is_active"]
    assert lamp["has_embedding"] is True
    assert body["items"][3]["has_embedding"] is False  # rake-1 has no vector


def test_pages_follow_next_after_to_the_end(api, shop):
    seen, after = [], ""
    pages = 0
    while True:
        ids, body = _ids(api, limit=2, after=after)
        seen += ids
        pages += 1
        if body["next_after"] is None:
            break
        after = body["next_after"]
        assert after == ids[-1]
    assert pages == 3 and seen == ["homeware-1", "lamp-1", "lamp-2", "rake-1", "rug-1"]


def test_filters_are_the_recommendation_filters(api, shop):
    assert _ids(api, category="Home")[0] == ["lamp-1", "lamp-2", "rug-1"]  # a prefix of names, not of text
    assert _ids(api, category="Home > Lamps")[0] == ["lamp-1", "lamp-2"]
    assert _ids(api, min_price="20", max_price="100")[0] == ["lamp-1", "lamp-2"]
    assert _ids(api, exclude="lamp-1,nope", category="Home")[0] == ["lamp-2", "rug-1"]
    assert _ids(api, in_stock="false")[0] == ["lamp-2"]
    assert _ids(api, category="Nowhere")[0] == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"min_price": "-1"}, "min_price"),
        ({"min_price": "50", "max_price": "10"}, "min_price"),
        ({"category": "Home >  > Lamps"}, "category"),
        ({"in_stock": "perhaps"}, "in_stock"),
        ({"after": "x" * 300}, "after"),
    ],
)
def test_bad_query_is_a_400_naming_the_field(api, shop, params, field):
    response = api.get(URL, params)
    assert response.status_code == 400, response.content
    assert field in response.json()["fields"]


def test_limit_above_the_cap_is_capped(api):
    for i in range(105):
        ItemFactory(external_id=f"it-{i:03d}", embedding=topic(1))
    assert len(_ids(api, limit=1000)[0]) == 100


def test_needs_an_api_key(anon_api, shop):
    assert anon_api.get(URL).status_code == 401


def test_query_count_is_the_baseline_whatever_the_page_size(api):
    for i in range(60):
        ItemFactory(external_id=f"it-{i:03d}", category_path=["Home"], embedding=topic(1))
    counts = []
    for limit in (5, 50):
        api.get(URL, {"limit": limit})  # warm: the API key (cached) and its touch
        with CaptureQueriesContext(connection) as queries:
            response = api.get(
                URL, {"limit": limit, "category": "Home", "max_price": "50", "exclude": "it-001"}
            )
        assert response.status_code == 200 and len(response.json()["items"]) == limit
        counts.append(len(queries.captured_queries))
    assert counts == [BASELINE["items_list"]] * 2, counts


@settings(
    max_examples=max(10, int(os.environ.get("RECSYS_PROPERTY_EXAMPLES", "200")) // 4),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    path=st.sampled_from(["/api/v1/items", "/api/v1/users/u-1"]),
    options=hostile_list_options,
    after=st.none() | hostile_text,
    in_stock=st.none() | hostile_text,
)
def test_hostile_query_strings_never_answer_5xx(api, path, options, after, in_stock):
    extra = {k: v for k, v in {"after": after, "in_stock": in_stock}.items() if v is not None}
    response = api.get(f"{path}?{query_string({**options, **extra})}")
    assert response.status_code < 500, response.content

"""Unknown /api/ paths answer the JSON error shape (with DEBUG on too), and the OpenAPI schema documents the
list and user endpoints and tells Swagger's Authorize box what to type."""

from __future__ import annotations

import pytest
from django.test import override_settings

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.parametrize(
    "path", ["/api/v2/items", "/api/v1/nothing-here", "/api/", "/api/v1/recommendations/x/y"]
)
def test_unknown_api_path_is_a_json_404(client, path, debug):
    with override_settings(DEBUG=debug):
        response = client.get(path)
        posted = client.post(path, data="{}", content_type="application/json")
    assert response.status_code == 404 and response["Content-Type"] == "application/json"
    assert response.json()["error"] == "not_found"
    assert posted.status_code == 404 and posted.json()["error"] == "not_found"  # not a CSRF page


def test_a_missing_trailing_slash_on_the_docs_still_redirects(client):
    response = client.get("/api/docs")
    assert response.status_code == 301 and response["Location"] == "/api/docs/"


def test_other_unknown_pages_stay_html(client):
    response = client.get("/no-such-page-at-all")
    assert response.status_code == 404 and "application/json" not in response["Content-Type"]


@pytest.fixture(scope="module")
def schema(django_db_blocker):
    from drf_spectacular.generators import SchemaGenerator

    with django_db_blocker.unblock():
        return SchemaGenerator().get_schema(request=None, public=True)


def test_swagger_authorize_box_says_to_type_api_key(schema):
    scheme = schema["components"]["securitySchemes"]["ApiKey"]
    assert scheme["name"] == "Authorization" and "Type `Api-Key <key>`" in scheme["description"]


def test_item_list_and_user_profile_are_in_the_schema(schema):
    items = schema["paths"]["/api/v1/items"]["get"]
    params = {p["name"]: p for p in items["parameters"]}
    assert {"limit", "after", "category", "min_price", "max_price", "exclude", "in_stock"} <= set(params)
    assert "pattern" in params["category"]["schema"]  # the shared query constraints (openapi.py)
    assert set(items["responses"]) >= {"200", "400", "401"}
    user = schema["paths"]["/api/v1/users/{user_id}"]["get"]
    assert {p["name"] for p in user["parameters"]} >= {"user_id", "limit"}
    assert set(user["responses"]) >= {"200", "400", "401", "404"}
    assert "delete" in schema["paths"]["/api/v1/users/{user_id}"]

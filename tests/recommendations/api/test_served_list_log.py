"""Every answer is logged under its recommendation_id, as served; erasure removes a user's lists."""

from __future__ import annotations

import uuid

import pytest

from catalog.embedding import current_model_name
from recommendations.models import RerankProfile, ServedList
from tests.factories import ItemFactory, UserProfileFactory, topic

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalog():
    for i in range(8):
        ItemFactory(external_id=f"it-{i}", embedding=topic(i, jitter=0.1, seed=i))


def test_answer_is_logged_exactly_as_served(api, catalog):
    UserProfileFactory(external_id="u1", embedding=topic(2))
    RerankProfile.objects.create(surface="home")
    body = api.get(
        "/api/v1/recommendations/users/u1", {"surface": "home", "limit": 4, "session_id": "s-1"}
    ).json()
    logged = ServedList.objects.get()
    assert logged.recommendation_id == uuid.UUID(body["recommendation_id"])
    assert (logged.user_id, logged.session_id, logged.surface, logged.scenario) == (
        "u1",
        "s-1",
        "home",
        "user",
    )
    assert (logged.profile_surface, logged.profile_version) == ("home", 1)
    assert logged.model_version == current_model_name() and logged.backend == "pgvector"
    assert logged.item_ids == [i["id"] for i in body["items"]]
    assert logged.scores == [i["score"] for i in body["items"]]
    assert logged.reasons == [i["reason"] for i in body["items"]]
    assert logged.item_pks == [ItemFactory._meta.model.objects.get(external_id=i).pk for i in logged.item_ids]


def test_each_answer_gets_its_own_id_and_row(api, catalog):
    first = api.get("/api/v1/recommendations/trending").json()["recommendation_id"]
    second = api.post("/api/v1/recommendations/session", {"item_ids": ["it-1"]}, format="json").json()
    assert first != second["recommendation_id"]
    assert sorted(ServedList.objects.values_list("scenario", flat=True)) == ["session", "trending"]


def test_erasing_a_user_deletes_their_served_lists_only(api, catalog):
    UserProfileFactory(external_id="u1", embedding=topic(2))
    api.get("/api/v1/recommendations/users/u1")
    api.get("/api/v1/recommendations/users/u1")
    api.get("/api/v1/recommendations/trending")
    response = api.delete("/api/v1/users/u1")
    assert response.status_code == 200
    assert response.json()["deleted"]["served_lists"] == 2
    assert list(ServedList.objects.values_list("user_id", flat=True)) == [""]

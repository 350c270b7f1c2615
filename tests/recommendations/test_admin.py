"""Merchandising admin: promotions are audited, profiles are versioned, the preview compares lists."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from catalog.models import Promotion
from recommendations.models import AuditEntry, RerankProfile, ServedList
from tests.recommendations.factories import ItemFactory, UserProfileFactory, blend, topic

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client, django_user_model):
    user = django_user_model.objects.create_superuser("merch", "merch@example.com", "pw-123456")
    client.force_login(user)
    return client


@pytest.fixture
def shop():
    UserProfileFactory(external_id="u1", embedding=topic(1))
    for i in range(6):
        ItemFactory(external_id=f"shoe-{i}", embedding=topic(1, jitter=0.3, seed=i))
    ItemFactory(external_id="sock", embedding=blend((1, 0.6), (2, 1.0)), brand="Sockit")


def _form(**overrides):
    now = timezone.now()
    data = {
        "name": "Sock week",
        "is_active": "on",
        "target_type": "brand",
        "brand": "Sockit",
        "category_path": "",
        "boost": "2.5",
        "pinned_slot": "",
        "surfaces": "",
        "starts_at_0": now.strftime("%Y-%m-%d"),
        "starts_at_1": "00:00:00",
        "ends_at_0": "",
        "ends_at_1": "",
    }
    data.update(overrides)
    return data


def test_creating_changing_and_deleting_a_promotion_is_audited(staff):
    response = staff.post("/admin/catalog/promotion/add/", _form())
    assert response.status_code == 302, response.content
    promotion = Promotion.objects.get()
    staff.post(f"/admin/catalog/promotion/{promotion.pk}/change/", _form(boost="4", surfaces="home,pdp"))
    staff.post(f"/admin/catalog/promotion/{promotion.pk}/delete/", {"post": "yes"})
    entries = list(AuditEntry.objects.order_by("id"))
    assert [e.action for e in entries] == ["create", "change", "delete"]
    assert all(e.username == "merch" and e.model == "catalog.Promotion" for e in entries)
    assert entries[1].changes == {"boost": [2.5, 4.0], "surfaces": [[], ["home", "pdp"]]}
    assert Promotion.objects.count() == 0


def test_invalid_promotion_is_refused_with_the_reason(staff):
    response = staff.post("/admin/catalog/promotion/add/", _form(brand=""))
    assert response.status_code == 200
    assert "A brand promotion needs a brand." in response.content.decode()
    assert not Promotion.objects.exists() and not AuditEntry.objects.exists()


def test_editing_a_profile_bumps_its_version_and_is_audited(staff):
    profile = RerankProfile.objects.create(surface="home")
    url = f"/admin/recommendations/rerankprofile/{profile.pk}/change/"
    form = staff.get(url).context["adminform"].form
    data = {name: form.initial.get(name, field.initial) for name, field in form.fields.items()}
    data = {k: ",".join(v) if isinstance(v, list) else v for k, v in data.items() if v is not None}
    data["in_stock_only"] = "on"
    data["promotions_enabled"] = "on"
    data["mmr_lambda"] = "0.5"
    response = staff.post(url, data)
    assert response.status_code == 302, response.content
    profile.refresh_from_db()
    assert profile.version == 2 and profile.mmr_lambda == 0.5
    assert AuditEntry.objects.get().changes["mmr_lambda"] == [0.9, 0.5]  # from the default (0.8 before 0005)


def test_preview_shows_the_list_with_and_without_promotions_side_by_side(staff, shop):
    Promotion.objects.create(
        name="future sock week",
        target_type="brand",
        brand="Sockit",
        boost=3.0,
        starts_at=timezone.now() + timedelta(days=2),
    )
    url = "/admin/catalog/promotion/preview/"
    now = staff.get(url, {"scenario": "user", "user_id": "u1", "limit": 5})
    with_now, without_now = now.context["columns"]
    assert [i["id"] for i in with_now["answer"].items] == [i["id"] for i in without_now["answer"].items]

    as_of = (timezone.now() + timedelta(days=3)).strftime("%Y-%m-%d %H:%M:%S")
    later = staff.get(url, {"scenario": "user", "user_id": "u1", "limit": 5, "as_of": as_of})
    with_later, without_later = later.context["columns"]
    assert with_later["answer"].items[0]["id"] == "sock"
    assert "sock" not in [i["id"] for i in without_later["answer"].items]
    html = later.content.decode()
    assert "With promotions" in html and "Without promotions" in html and 'class="promoted changed"' in html
    assert ServedList.objects.count() == 0  # previews are not served lists


def test_preview_of_a_session_names_unknown_items(staff, shop):
    response = staff.get(
        "/admin/catalog/promotion/preview/",
        {"scenario": "session", "session_item_ids": "shoe-1,nope", "limit": 5},
    )
    assert response.context["columns"] is None
    assert "Unknown item ids: nope" in response.content.decode()


def test_preview_needs_staff_login(client):
    response = client.get("/admin/catalog/promotion/preview/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]

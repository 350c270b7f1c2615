"""Merchandising admin: promotions are audited, profiles are versioned, the preview compares lists."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from catalog.models import Promotion
from recommendations.models import AuditEntry, RerankProfile, ServedList
from tests.factories import ItemFactory, UserProfileFactory, blend, topic

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
        "surface_scope": "all",
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
    staff.post(
        f"/admin/catalog/promotion/{promotion.pk}/change/",
        _form(boost="4", surface_scope="named", surfaces="home,pdp"),
    )
    staff.post(f"/admin/catalog/promotion/{promotion.pk}/delete/", {"post": "yes"})
    entries = list(AuditEntry.objects.order_by("id"))
    assert [e.action for e in entries] == ["create", "change", "delete"]
    assert all(e.username == "merch" and e.model == "catalog.Promotion" for e in entries)
    assert entries[1].changes == {
        "boost": [2.5, 4.0],
        "surface_scope": ["all", "named"],
        "surfaces": [[], ["home", "pdp"]],
    }
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
    # from the default (0.8 before 0005, 0.9 before 0015)
    assert AuditEntry.objects.get().changes["mmr_lambda"] == [0.95, 0.5]


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


def test_item_is_picked_by_external_id_or_title_through_autocomplete(staff, shop):
    from catalog.models import Item

    Item.objects.filter(external_id="sock").update(title="Merino trail sock")
    params = {"app_label": "catalog", "model_name": "promotion", "field_name": "item"}
    by_id = staff.get("/admin/autocomplete/", {**params, "term": "sock"}).json()["results"]
    by_title = staff.get("/admin/autocomplete/", {**params, "term": "merino"}).json()["results"]
    sock = Item.objects.get(external_id="sock")
    assert [r["id"] for r in by_id] == [str(sock.pk)] and by_id[0]["text"].startswith("sock: ")
    assert [r["id"] for r in by_title] == [str(sock.pk)]
    page = staff.get("/admin/catalog/promotion/add/").content.decode()
    assert 'class="admin-autocomplete' in page and "vForeignKeyRawIdAdminField" not in page


def test_the_audit_trail_and_the_list_name_the_item_by_external_id(staff, shop):
    from catalog.models import Item

    sock = Item.objects.get(external_id="sock")
    shoe = Item.objects.get(external_id="shoe-1")
    form = _form(target_type="item", brand="", item=str(sock.pk))
    assert staff.post("/admin/catalog/promotion/add/", form).status_code == 302
    promotion = Promotion.objects.get()
    staff.post(f"/admin/catalog/promotion/{promotion.pk}/change/", {**form, "item": str(shoe.pk)})
    create, change = AuditEntry.objects.order_by("id")
    assert create.changes["item"] == [None, "sock"]
    assert change.changes["item"] == ["sock", "shoe-1"]
    assert "item shoe-1" in staff.get("/admin/catalog/promotion/").content.decode()


def test_starts_at_is_prefilled_with_now(staff):
    form = staff.get("/admin/catalog/promotion/add/").context["adminform"].form
    assert abs((form.initial["starts_at"] - timezone.now()).total_seconds()) < 60


def test_saving_a_pin_on_an_item_that_cannot_be_served_warns(staff, shop):
    from catalog.models import Item

    Item.objects.filter(external_id="sock").update(in_stock=False)
    sock = Item.objects.get(external_id="sock")
    form = _form(target_type="item", brand="", item=str(sock.pk), pinned_slot="1")
    response = staff.post("/admin/catalog/promotion/add/", form, follow=True)
    warnings = [str(m) for m in response.context["messages"] if m.level_tag == "warning"]
    assert len(warnings) == 1 and "sock" in warnings[0] and "out of stock" in warnings[0]
    assert Promotion.objects.count() == 1  # a warning, not a refusal

    shoe = Item.objects.get(external_id="shoe-1")
    response = staff.post("/admin/catalog/promotion/add/", {**form, "item": str(shoe.pk)}, follow=True)
    assert not [m for m in response.context["messages"] if m.level_tag == "warning"]


def test_all_surfaces_is_an_explicit_choice(staff):
    page = staff.get("/admin/catalog/promotion/add/").content.decode()
    assert 'name="surface_scope"' in page and 'type="radio"' in page
    response = staff.post("/admin/catalog/promotion/add/", _form(surface_scope="named", surfaces=""))
    assert response.status_code == 200
    assert "Name at least one surface, or choose all surfaces." in response.content.decode()


def test_preview_says_why_a_live_promotion_did_not_apply(staff, shop):
    from catalog.models import Item

    Item.objects.filter(external_id="sock").update(in_stock=False)
    sock = Item.objects.get(external_id="sock")
    start = timezone.now() - timedelta(hours=1)
    Promotion.objects.create(name="sold out", target_type="item", item=sock, pinned_slot=1, starts_at=start)
    Promotion.objects.create(
        name="pdp only",
        target_type="brand",
        brand="Sockit",
        starts_at=start,
        surface_scope="named",
        surfaces=["pdp"],
    )
    response = staff.get(
        "/admin/catalog/promotion/preview/", {"scenario": "user", "user_id": "u1", "limit": 5}
    )
    why = {e.name: e for e in response.context["explanations"]}
    assert why["sold out"].code == "out_of_stock" and not why["sold out"].applied
    assert why["pdp only"].code == "other_surface"
    html = response.content.decode()
    assert "Its item sock is out of stock." in html and 'data-code="other_surface"' in html


def test_preview_offers_recent_users_and_sessions(staff, shop):
    from catalog.models import Item
    from tests.factories import EventFactory

    EventFactory(user_id="u1", session_id="s-u1", item=Item.objects.get(external_id="shoe-1"))
    EventFactory(user_id=None, session_id="anon-7", item=Item.objects.get(external_id="shoe-2"))
    response = staff.get("/admin/catalog/promotion/preview/")
    html = response.content.decode()
    assert '<option value="u1">' in html and "?scenario=user&amp;limit=10&amp;user_id=u1" in html
    assert "anon-7" in html and "session_item_ids=shoe-2" in html


def test_preview_of_semantic_search_says_a_pin_on_all_surfaces_leaves_it_alone(staff, shop):
    from catalog.models import Item

    sock = Item.objects.get(external_id="sock")
    start = timezone.now() - timedelta(hours=1)
    Promotion.objects.create(name="home pin", target_type="item", item=sock, pinned_slot=1, starts_at=start)
    Promotion.objects.create(
        name="search pin", target_type="item", item=sock, pinned_slot=1, starts_at=start, surfaces=["search"]
    )
    url = "/admin/catalog/promotion/preview/"
    response = staff.get(url, {"scenario": "search", "query": "warm socks", "limit": 5})
    why = {e.name: e for e in response.context["explanations"]}
    assert why["home pin"].code == "search_not_named" and "search" in why["home pin"].text
    assert why["search pin"].applied
    assert response.context["columns"][0]["answer"].items[0]["id"] == "sock"
    assert staff.get(url, {"scenario": "search", "query": " ", "limit": 5}).context["columns"] is None


def test_preview_names_the_promotion_that_took_a_pin_slot(staff, shop):
    from catalog.models import Item

    start = timezone.now() - timedelta(hours=1)
    sock, shoe = Item.objects.get(external_id="sock"), Item.objects.get(external_id="shoe-2")
    Promotion.objects.create(name="sock pin", target_type="item", item=sock, pinned_slot=1, starts_at=start)
    Promotion.objects.create(name="shoe pin", target_type="item", item=shoe, pinned_slot=1, starts_at=start)
    response = staff.get(
        "/admin/catalog/promotion/preview/", {"scenario": "user", "user_id": "u1", "limit": 5}
    )
    first = response.context["columns"][0]["answer"].items[0]["id"]
    why = {e.name: e for e in response.context["explanations"]}
    winner, loser = ("shoe pin", "sock pin") if first == "shoe-2" else ("sock pin", "shoe pin")
    assert why[winner].applied and "position 1" in why[winner].text
    assert why[loser].code == "slot_lost" and f"“{winner}”" in why[loser].text

"""The dead letters in admin: listed with their error, filtered by sweep, retried by an action."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from analytics.attribution import events_attribute_recent
from analytics.models import Attribution, DeadLetter
from interactions.models import Event
from tests.factories import T0, EventFactory, ItemFactory, served_list

pytestmark = pytest.mark.django_db

URL = "/admin/analytics/deadletter/"


@pytest.fixture
def staff_client(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("root", password="pw-root-1"))
    return client


@pytest.fixture
def poison():
    item = ItemFactory(category_path=[], embedding=None, published_at=None)
    served = served_list([item], created_at=T0)
    EventFactory(
        session_id="s1",
        timestamp=T0,
        item=item,
        event_type="click",
        recommendation_id=served.recommendation_id,
    )
    purchase = EventFactory(
        session_id="s1",
        item=item,
        event_type="purchase",
        timestamp=T0 + timedelta(hours=1),
        value=Decimal("9999999999.9999"),
        quantity=2_000_000_000,
    )
    events_attribute_recent()
    return purchase


def test_dead_letters_are_listed_with_their_error_and_filtered_by_sweep(staff_client, poison):
    html = staff_client.get(URL).content.decode()
    assert str(poison.pk) in html
    assert "numeric field overflow" in html
    assert (
        "numeric field overflow" not in staff_client.get(f"{URL}?sweep=daily_metrics_rollup").content.decode()
    )
    assert "numeric field overflow" in staff_client.get(f"{URL}?sweep=attribution").content.decode()


def test_retry_action_attributes_a_fixed_row_and_resolves_it(staff_client, poison):
    Event.objects.filter(pk=poison.pk).update(value=Decimal("4"), quantity=1)
    letter = DeadLetter.objects.get()
    response = staff_client.post(URL, {"action": "retry", "_selected_action": [letter.pk]}, follow=True)
    assert "1 processed and resolved" in response.content.decode()
    letter.refresh_from_db()
    assert letter.resolved
    assert Attribution.objects.get(event=poison, kind="conversion").revenue == Decimal("4")


def test_dead_letters_cannot_be_added_or_edited_in_admin(staff_client, poison):
    assert staff_client.get(f"{URL}add/").status_code == 403
    letter = DeadLetter.objects.get()
    staff_client.post(f"{URL}{letter.pk}/change/", {"resolved": "on", "error": "x"})
    letter.refresh_from_db()
    assert (letter.resolved, letter.error.startswith("DataError")) == (False, True)

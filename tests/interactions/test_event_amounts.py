"""The caps on a purchase's `value` and `quantity`: what the validator accepts, revenue columns can hold."""

from __future__ import annotations

import pytest

from interactions.models import Event

pytestmark = pytest.mark.django_db

URL = "/api/v1/events"


def purchase(n: int, **amounts) -> dict:
    return {
        "event_id": f"buy-{n}",
        "user_id": "u-1",
        "item_id": "sku-1",
        "event_type": "purchase",
        "timestamp": "2025-03-01T10:00:00Z",
        **amounts,
    }


@pytest.mark.parametrize(
    ("amounts", "field"),
    [
        ({"value": "1000000000.0001", "quantity": 1}, "value"),
        ({"value": "-1000000000.0001", "quantity": 1}, "value"),
        ({"value": "1", "quantity": 100_001}, "quantity"),
        ({"value": "1", "quantity": -100_001}, "quantity"),
        # the repro of issue 12: in range before, and value x quantity overflowed attribution's revenue
        ({"value": "999999999", "quantity": 1_000_000}, "quantity"),
    ],
)
def test_amount_above_the_cap_gets_400_naming_the_field(api, amounts, field):
    response = api.post(URL, {"events": [purchase(1, **amounts)]}, format="json")
    assert response.status_code == 400, response.content
    [rejected] = response.json()["rejected"]
    assert list(rejected["errors"]) == [field]
    assert "between" in rejected["errors"][field][0]
    assert not Event.objects.exists()


def test_valid_events_beside_an_amount_above_the_cap_are_kept(api):
    events = [
        purchase(1, value="12.50", quantity=2),
        purchase(2, value="999999999", quantity=1_000_000),
        purchase(3, value="1000000000", quantity=100_000),  # the largest accepted
    ]
    response = api.post(URL, {"events": events}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["accepted"] == 2
    assert [(r["index"], list(r["errors"])) for r in body["rejected"]] == [(1, ["quantity"])]
    assert sorted(Event.objects.values_list("event_id", flat=True)) == ["buy-1", "buy-3"]

"""The payloads are defined once (core/payloads.py): the OpenAPI components of an item and an event
are the models' own JSON schema, and the bounds the schema states are the ones the validators enforce (the
schema and the validators once disagreed on an event's `quantity` and `value`)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from core import payloads
from core.openapi import openapi_30
from core.payloads import check_event, check_item
from interactions.models import EventType

EVENT = {
    "event_id": "e-1",
    "user_id": "u-1",
    "item_id": "i-1",
    "event_type": "purchase",
    "timestamp": datetime(2026, 1, 1, tzinfo=UTC).isoformat(),
}
ITEM = {"id": "i-1", "title": "A mug"}


@pytest.fixture(scope="module")
def components(django_db_blocker):
    from drf_spectacular.generators import SchemaGenerator

    with django_db_blocker.unblock():
        return SchemaGenerator().get_schema(request=None, public=True)["components"]["schemas"]


def _inline_enums(schema: dict, components: dict) -> dict:
    """drf-spectacular's enum hook moves each enum into a component of its own: put it back."""
    properties = {}
    for name, prop in schema["properties"].items():
        ref = prop.get("$ref", "")
        if ref.startswith("#/components/schemas/") and ref.endswith("Enum"):
            prop = {"enum": components[ref.rsplit("/", 1)[1]]["enum"]}
        properties[name] = prop
    return {**schema, "properties": properties}


@pytest.mark.parametrize(
    "component, model",
    [
        ("ItemIn", payloads.ItemIn),
        ("PatchedItemPatch", payloads.ItemPatch),
        ("EventIn", payloads.EventIn),
        ("ItemBatchIn", payloads.ItemBatchIn),
        ("EventBatchIn", payloads.EventBatchIn),
    ],
)
def test_body_components_are_the_payload_models_json_schema(components, component, model):
    own = model.model_json_schema(ref_template="#/components/schemas/{model}", mode="validation")
    own.pop("$defs", None)
    assert _inline_enums(components[component], components) == openapi_30(own)


def test_an_unknown_field_is_refused_and_the_schema_says_so(components):
    for component in ("ItemIn", "PatchedItemPatch", "EventIn"):
        assert components[component]["additionalProperties"] is False
    assert check_event({**EVENT, "colour": "red"})[1] == {"colour": ["Unknown field."]}
    assert check_item({**ITEM, "is_active": True})[1] == {"is_active": ["Read-only."]}


@pytest.mark.parametrize(
    "component, check, valid",
    [("EventIn", check_event, EVENT), ("ItemIn", check_item, ITEM)],
)
def test_the_required_fields_are_the_ones_the_validator_requires(components, component, check, valid):
    required = set(components[component]["required"])
    assert required <= set(valid)
    for name in valid:
        clean, errors = check({k: v for k, v in valid.items() if k != name})
        if name in required:
            assert errors == {name: ["This field is required."]}
        elif name == "user_id":  # the one rule across fields: user_id or session_id
            assert errors == {"user_id": ["Either user_id or session_id is required."]}
        else:
            assert errors == {}, name


@pytest.mark.parametrize(
    "component, check, valid, field",
    [
        ("EventIn", check_event, EVENT, "quantity"),
        ("EventIn", check_event, EVENT, "position"),
        ("ItemIn", check_item, ITEM, "stock"),
    ],
)
def test_integer_bounds_in_the_schema_are_the_validators_bounds(components, component, check, valid, field):
    prop = components[component]["properties"][field]
    low, high = prop["minimum"], prop["maximum"]
    for accepted in (low, high):
        assert check({**valid, field: accepted})[1] == {}, accepted
    for refused in (low - 1, high + 1):
        assert field in check({**valid, field: refused})[1], refused


@pytest.mark.parametrize(
    "component, check, valid, field, extremes, beyond",
    [
        (
            "EventIn",
            check_event,
            EVENT,
            "value",
            ["-999999999.9999", "999999999.9999", "0"],
            ["1000000000.5"],
        ),
        ("ItemIn", check_item, ITEM, "price", ["0", "9999999999.99", "0.5"], ["-1", "10000000000"]),
    ],
)
def test_decimal_patterns_in_the_schema_accept_only_what_the_validator_accepts(
    components, component, check, valid, field, extremes, beyond
):
    pattern = re.compile(components[component]["properties"][field]["pattern"])
    for text in extremes:
        assert pattern.fullmatch(text) and check({**valid, field: text})[1] == {}, text
    for text in beyond:
        assert not pattern.fullmatch(text) and field in check({**valid, field: text})[1], text


def test_event_types_are_one_list(components):
    assert payloads.EVENT_TYPES == tuple(EventType.values)
    assert _inline_enums(components["EventIn"], components)["properties"]["event_type"]["enum"] == list(
        EventType.values
    )
    assert "event_type" in check_event({**EVENT, "event_type": "wishlist"})[1]

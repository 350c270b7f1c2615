"""The answer's JSON is built by hand on the hot path (`answer_data`); it must be exactly what
AnswerSerializer, the documented schema, renders."""

import uuid
from decimal import Decimal

import pytest
from django.http import QueryDict
from rest_framework.exceptions import ValidationError

from recommendations.api.serializers import (
    AnswerSerializer,
    ListParamsSerializer,
    _plain_list_params,
    answer_data,
    list_params,
)
from recommendations.scenarios import Answer


def _item(**changes):
    item = {
        "pk": 1,
        "id": "sku-1",
        "title": "Trail shoe",
        "price": Decimal("89.5"),
        "image_url": "https://img.example/1.jpg",
        "category_path": ["Sports", "Running"],
        "score": 0.912345,
        "reason": {"type": "because_you_viewed", "item_id": "sku-9"},
    }
    item.update(changes)
    return item


@pytest.mark.parametrize(
    "items",
    [
        [],
        [_item()],
        [_item(price=None), _item(price=Decimal("0.005"), image_url="", category_path=[])],
        [_item(price=Decimal("1234567.891"), score=1)],
        [_item(reason={"type": "promoted", "promotion_id": 7, "explore": True})],
        [_item(reason={"type": "trending", "unexpected": "dropped", "explore": True})],
        [_item(reason={"type": "similar_to", "item_id": None}), _item(title=None)],
    ],
)
def test_answer_data_renders_exactly_what_the_answer_serializer_renders(items):
    answer = Answer(recommendation_id=uuid.uuid4(), scenario="user", items=items, profile="default")

    assert answer_data(answer) == AnswerSerializer(answer).data


def test_answer_in_an_experiment_renders_experiment_and_variant_in_both():
    answer = Answer(
        recommendation_id=uuid.uuid4(), scenario="user", items=[_item()], experiment="home-mmr", variant="B"
    )
    data = answer_data(answer)
    assert (data["experiment"], data["variant"]) == ("home-mmr", "B")
    assert data == AnswerSerializer(answer).data


@pytest.mark.parametrize(
    "query",
    [
        "",
        "limit=5",
        "limit=007",
        "limit=100",
        "limit=999999",
        "limit=5&limit=7",
        "surface=home",
        "surface=",
        "surface=pdp.v2:a-b_c&limit=3",
        "session_id=s-1&limit=4",
        "unknown=1",
    ],
)
def test_plain_options_give_what_the_serializer_gives(query):
    data = QueryDict(query)
    serializer = ListParamsSerializer(data=data)
    assert serializer.is_valid(), serializer.errors

    assert _plain_list_params(data) is not None  # the serializer is skipped
    assert list_params(data) == serializer.to_params()


@pytest.mark.parametrize(
    "query",
    ["limit=0", "limit=-1", "limit=5.0", "limit=+5", "limit=%205", "limit=1234567", "surface=%20home",
     "surface=a%20b", "category=Shoes", "min_price=1", "exclude=",
     # a trailing newline: `$` matches before it, so only a full match may take the plain path
     "surface=home%0A", "limit=5&surface=home%0A", "limit=5%0A", "surface=%00", "limit=%EF%BC%95",
     "limit=99999999999999999999"],
)  # fmt: skip
def test_other_options_go_through_the_serializer(query):
    data = QueryDict(query)
    serializer = ListParamsSerializer(data=data)

    assert _plain_list_params(data) is None
    if serializer.is_valid():
        assert list_params(data) == serializer.to_params()
    else:
        with pytest.raises(ValidationError) as raised:
            list_params(data)
        assert raised.value.detail == serializer.errors

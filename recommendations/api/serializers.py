"""Input and output shapes of the recommendation API (DESIGN.md §4)."""

from __future__ import annotations

import re
from typing import Any

from rest_framework import serializers

from core.payloads import DEFAULT_LIMIT, MAX_LIMIT, SURFACE_PATTERN, ListFiltersSerializer
from recommendations import selectors
from recommendations.scenarios import ListParams

MAX_SESSION_ITEMS = 100
MAX_CART_ITEMS = 100
MAX_QUERY_CHARS = 500


def items_resolve(external_ids: list[str], *, field: str) -> dict[str, int]:
    """Shop ids -> pks; a 400 naming the field and the unknown ids if any is unknown."""
    found = selectors.items_pks_by_external_id(external_ids=external_ids)
    unknown = [i for i in dict.fromkeys(external_ids) if i not in found]
    if unknown:
        shown = ", ".join(repr(i[:100]) for i in unknown[:10])
        more = f" and {len(unknown) - 10} more" if len(unknown) > 10 else ""
        raise serializers.ValidationError({field: [f"Unknown item ids: {shown}{more}."]})
    return found


class ListParamsSerializer(ListFiltersSerializer):
    """The options every scenario takes (core.payloads.ListFiltersSerializer) and the surface."""

    surface = serializers.CharField(
        required=False,
        default="",
        allow_blank=True,
        max_length=100,
        help_text="A free label such as home or pdp; selects the re-ranking profile.",
    )

    def validate_surface(self, value: str) -> str:
        if not SURFACE_PATTERN.match(value):
            raise serializers.ValidationError("Only letters, digits and _ . : - are allowed.")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        exclude_ids = attrs.get("exclude") or []
        attrs["exclude_pks"] = frozenset(items_resolve(exclude_ids, field="exclude").values())
        return attrs

    def to_params(self) -> ListParams:
        data = self.validated_data
        return ListParams(
            limit=data["limit"],
            surface=data["surface"],
            exclude_pks=data["exclude_pks"],
            category=tuple(data.get("category") or ()),
            min_price=data.get("min_price"),
            max_price=data.get("max_price"),
        )


def list_params(data: Any) -> ListParams:
    """Validated options, or a 400 naming each bad field."""
    plain = _plain_list_params(data)
    if plain is not None:
        return plain
    serializer = ListParamsSerializer(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.to_params()


# The options ListParamsSerializer reads; a query with none of them but `limit` and `surface` skips it.
_LIST_FIELDS = frozenset(ListParamsSerializer._declared_fields)
_PLAIN_FIELDS = frozenset({"limit", "surface"})
_DIGITS = re.compile(r"\A[0-9]{1,6}\Z")


def _plain_list_params(data: Any) -> ListParams | None:
    """The options of the common request (none, or only a `limit` of digits and a `surface` label), as
    ListParamsSerializer gives them, without it: a serializer's fields are deep-copied for every instance,
    which cost a `users` answer from its pre-computed list about 0.5 ms of CPU, a tenth of its Python time.
    None for anything else (the serializer validates it, and names the field in a 400)."""
    if any(name in data for name in _LIST_FIELDS - _PLAIN_FIELDS):
        return None
    limit, surface = DEFAULT_LIMIT, ""
    if "limit" in data:
        raw = data["limit"]
        if not isinstance(raw, str) or not _DIGITS.match(raw) or int(raw) < 1:
            return None
        limit = min(int(raw), MAX_LIMIT)
    if "surface" in data:
        surface = data["surface"]
        # the serializer trims whitespace, which the pattern refuses: such a label goes through it
        if not isinstance(surface, str) or len(surface) > 100 or not SURFACE_PATTERN.fullmatch(surface):
            return None
    return ListParams(limit=limit, surface=surface)


class UserQuerySerializer(serializers.Serializer):
    session_id = serializers.CharField(
        required=False,
        default="",
        allow_blank=True,
        max_length=128,
        help_text="The visitor's session: the fallback for a user with no history.",
    )


def user_session_id(data: Any) -> str:
    """The validated `session_id` of a `users` query, or a 400. Without one, its default, without building
    the serializer (the common request)."""
    if "session_id" not in data:
        return ""
    query = UserQuerySerializer(data=data)
    query.is_valid(raise_exception=True)
    return query.validated_data["session_id"]


class SessionInSerializer(serializers.Serializer):
    session_id = serializers.CharField(required=False, default="", allow_blank=True, max_length=128)
    item_ids = serializers.ListField(
        child=serializers.CharField(max_length=255),
        min_length=1,
        max_length=MAX_SESSION_ITEMS,
        help_text="Recent item ids, oldest first.",
    )


class CartInSerializer(serializers.Serializer):
    item_ids = serializers.ListField(
        child=serializers.CharField(max_length=255),
        min_length=1,
        max_length=MAX_CART_ITEMS,
        help_text="The cart's item ids; they are never recommended back.",
    )


class SearchQuerySerializer(serializers.Serializer):
    q = serializers.CharField(max_length=MAX_QUERY_CHARS, trim_whitespace=True)


class ReasonSerializer(serializers.Serializer):
    type = serializers.CharField(
        help_text="because_you_viewed, because_you_bought, similar_to, trending, "
        "promoted, matches_query, new_arrival, bought_together, viewed_together or recommended"
    )
    item_id = serializers.CharField(required=False)
    promotion_id = serializers.IntegerField(required=False)
    explore = serializers.BooleanField(required=False)


class RecommendedItemSerializer(serializers.Serializer):
    id = serializers.CharField()
    title = serializers.CharField()
    price = serializers.DecimalField(max_digits=12, decimal_places=2, allow_null=True)
    image_url = serializers.CharField()
    category_path = serializers.ListField(child=serializers.CharField())
    score = serializers.FloatField()
    reason = ReasonSerializer()


class AnswerSerializer(serializers.Serializer):
    recommendation_id = serializers.UUIDField()
    scenario = serializers.CharField()
    items = RecommendedItemSerializer(many=True)
    experiment = serializers.CharField(
        required=False, help_text="The A/B experiment this answer was served in (absent outside one)."
    )
    variant = serializers.CharField(
        required=False, help_text="The experiment's arm served (absent outside an experiment)."
    )

    def to_representation(self, instance: Any) -> dict[str, Any]:
        data = super().to_representation(instance)
        if data.get("experiment") is None:  # outside any experiment: the answer has no such keys
            data.pop("experiment", None)
            data.pop("variant", None)
        return data


_PRICE = RecommendedItemSerializer().fields["price"]
_REASON_FIELDS = {"type": str, "item_id": str, "promotion_id": int, "explore": bool}


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def answer_data(answer: Any) -> dict[str, Any]:
    """`AnswerSerializer(answer).data`, without building and deep-copying the nested serializers' fields for
    every item (~1 ms of CPU per answer of 10 items, a tenth of what serving a list costs in Python). Same
    output: the same price formatting (the serializer's own DecimalField), the reason's declared keys only,
    in their order, and nulls kept (checked against the serializer in the tests)."""
    items = []
    for item in answer.items:
        reason = item["reason"]
        price = item["price"]
        items.append(
            {
                "id": _text(item["id"]),
                "title": _text(item["title"]),
                "price": None if price is None else _PRICE.to_representation(price),
                "image_url": _text(item["image_url"]),
                "category_path": [_text(level) for level in item["category_path"]],
                "score": None if item["score"] is None else float(item["score"]),
                "reason": {
                    key: None if reason[key] is None else cast(reason[key])
                    for key, cast in _REASON_FIELDS.items()
                    if key in reason
                },
            }
        )
    data = {
        "recommendation_id": str(answer.recommendation_id),
        "scenario": str(answer.scenario),
        "items": items,
    }
    if getattr(answer, "experiment", None) is not None:
        data.update(experiment=str(answer.experiment), variant=str(answer.variant))
    return data

"""Shapes of the item API. Input is validated by catalog.validation.check_item (shared with the import
commands); these serializers document it in OpenAPI and render output."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from catalog.models import CATEGORY_SEPARATOR, Item
from catalog.selectors import ItemFilters
from catalog.validation import FieldError, check_storable_text


class ItemInSerializer(serializers.Serializer):
    id = serializers.CharField(max_length=255)
    title = serializers.CharField(max_length=500)
    description = serializers.CharField(required=False, max_length=20000)
    category_path = serializers.ListField(
        child=serializers.CharField(max_length=200), required=False, max_length=10
    )
    price = serializers.DecimalField(max_digits=12, decimal_places=2, required=False, allow_null=True)
    currency = serializers.CharField(required=False, max_length=3)
    brand = serializers.CharField(required=False, max_length=200)
    location = serializers.CharField(required=False, max_length=200)
    condition = serializers.CharField(required=False, max_length=50)
    image_url = serializers.URLField(required=False, max_length=2000)
    attributes = serializers.DictField(required=False, help_text="At most 16 KiB as JSON.")
    in_stock = serializers.BooleanField(required=False)
    stock = serializers.IntegerField(required=False, min_value=0, allow_null=True)
    published_at = serializers.DateTimeField(required=False, allow_null=True)


class ItemPatchSerializer(ItemInSerializer):
    id = None  # type: ignore[assignment]  # DRF's way to drop an inherited field: the id is in the URL
    title = serializers.CharField(max_length=500, required=False)


class ItemBatchInSerializer(serializers.Serializer):
    items = ItemInSerializer(many=True, help_text="1 to 1,000 items.")


class RejectedSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    id = serializers.CharField(required=False)
    # a declared field named like a Serializer attribute: DRF's metaclass moves declared fields out of the
    # class, so the attribute is untouched at run time; the stubs cannot see that
    errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))  # type: ignore[assignment]


class ItemBatchOutSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    unchanged = serializers.IntegerField()
    rejected = RejectedSerializer(many=True)


class ItemOutSerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="external_id")
    has_embedding = serializers.SerializerMethodField()

    class Meta:
        model = Item
        fields = [
            "id",
            "title",
            "description",
            "category_path",
            "price",
            "currency",
            "brand",
            "location",
            "condition",
            "image_url",
            "attributes",
            "in_stock",
            "stock",
            "published_at",
            "is_active",
            "has_embedding",
            "created_at",
            "updated_at",
        ]

    def get_has_embedding(self, item: Item) -> bool:
        return item.embedding is not None and not item.embedding_dirty


class ErrorSerializer(serializers.Serializer):
    error = serializers.CharField()
    detail = serializers.CharField()
    # a declared field named like a Serializer attribute: DRF's metaclass moves declared fields out of the
    # class, so the attribute is untouched at run time; the stubs cannot see that
    fields = serializers.DictField(  # type: ignore[assignment]
        child=serializers.ListField(child=serializers.CharField()), required=False
    )


ITEMS_PAGE_DEFAULT = 10
ITEMS_PAGE_MAX = 100  # larger limits are capped, not refused (as on the recommendation endpoints)
MAX_EXCLUDE = 500
MAX_CATEGORY_DEPTH = 10
MAX_PRICE = 10**10


class ItemListQuerySerializer(serializers.Serializer):
    """`GET /api/v1/items`: a page of active items, with the recommendation endpoints' filters."""

    limit = serializers.IntegerField(
        required=False,
        default=ITEMS_PAGE_DEFAULT,
        min_value=1,
        help_text=f"Default {ITEMS_PAGE_DEFAULT}; values above {ITEMS_PAGE_MAX} are capped.",
    )
    after = serializers.CharField(
        required=False,
        default="",
        allow_blank=True,
        max_length=255,
        help_text="The next page starts after this item id: give the previous page's `next_after`.",
    )
    category = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=2000,
        help_text=f"A category path prefix, names joined by '{CATEGORY_SEPARATOR.strip()}'.",
    )
    min_price = serializers.DecimalField(
        required=False, max_digits=16, decimal_places=4, min_value=0, max_value=MAX_PRICE
    )
    max_price = serializers.DecimalField(
        required=False, max_digits=16, decimal_places=4, min_value=0, max_value=MAX_PRICE
    )
    exclude = serializers.CharField(
        required=False, allow_blank=True, help_text="Comma-separated item ids to leave out."
    )
    in_stock = serializers.BooleanField(
        required=False, allow_null=True, default=None, help_text="true or false; absent: both."
    )

    def validate_limit(self, value: int) -> int:
        return min(value, ITEMS_PAGE_MAX)

    def validate_after(self, value: str) -> str:
        return _storable(value)

    def validate_category(self, value: str) -> tuple[str, ...]:
        parts = [_storable(part.strip()) for part in value.split(CATEGORY_SEPARATOR.strip())]
        if value.strip() and not all(parts):
            raise serializers.ValidationError("Empty category name in the path.")
        if len(parts) > MAX_CATEGORY_DEPTH:
            raise serializers.ValidationError(f"At most {MAX_CATEGORY_DEPTH} levels.")
        return tuple(p for p in parts if p)

    def validate_exclude(self, value: str) -> frozenset[str]:
        ids = [_storable(i.strip()) for i in value.split(",") if i.strip()]
        if len(ids) > MAX_EXCLUDE:
            raise serializers.ValidationError(f"At most {MAX_EXCLUDE} ids.")
        return frozenset(ids)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        low, high = attrs.get("min_price"), attrs.get("max_price")
        if low is not None and high is not None and low > high:
            raise serializers.ValidationError({"min_price": ["Must not be greater than max_price."]})
        return attrs

    def to_filters(self) -> ItemFilters:
        data = self.validated_data
        return ItemFilters(
            category=data.get("category") or (),
            min_price=data.get("min_price"),
            max_price=data.get("max_price"),
            exclude=data.get("exclude") or frozenset(),
            in_stock=data.get("in_stock"),
        )


def _storable(value: str) -> str:
    try:  # PostgreSQL text cannot hold NUL or a lone surrogate: a 500 otherwise
        check_storable_text(value)
    except FieldError as exc:
        raise serializers.ValidationError(str(exc)) from None
    return value


class ItemListOutSerializer(ItemOutSerializer):
    """An item in a list: `has_embedding` comes from the query (the vectors are not loaded)."""

    def get_has_embedding(self, item: Item) -> bool:
        return bool(item.has_vector)  # type: ignore[attr-defined]  # annotated by catalog.selectors.items_list


class ItemPageSerializer(serializers.Serializer):
    items = ItemListOutSerializer(many=True)
    next_after = serializers.CharField(
        allow_null=True, help_text="Pass as `after` for the next page; null on the last page."
    )

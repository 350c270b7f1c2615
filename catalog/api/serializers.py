"""Output shapes of the item API, and its list's query. An item as the API takes it is defined once, in
core.payloads (`ItemIn`, `ItemPatch`, `check_item`), shared with the import commands."""

from __future__ import annotations

from rest_framework import serializers

from catalog.models import Item
from catalog.selectors import ItemFilters
from core.payloads import ListFiltersSerializer, storable


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


class ItemListQuerySerializer(ListFiltersSerializer):
    """`GET /api/v1/items`: a page of active items, with the recommendation endpoints' filters
    (core.payloads.ListFiltersSerializer). Unknown ids in `exclude` are ignored."""

    after = serializers.CharField(
        required=False,
        default="",
        allow_blank=True,
        max_length=255,
        help_text="The next page starts after this item id: give the previous page's `next_after`.",
    )
    in_stock = serializers.BooleanField(
        required=False, allow_null=True, default=None, help_text="true or false; absent: both."
    )

    def validate_after(self, value: str) -> str:
        return storable(value)

    def to_filters(self) -> ItemFilters:
        data = self.validated_data
        return ItemFilters(
            category=data.get("category") or (),
            min_price=data.get("min_price"),
            max_price=data.get("max_price"),
            exclude=frozenset(data.get("exclude") or ()),
            in_stock=data.get("in_stock"),
        )


class ItemListOutSerializer(ItemOutSerializer):
    """An item in a list: `has_embedding` comes from the query (the vectors are not loaded)."""

    def get_has_embedding(self, item: Item) -> bool:
        return bool(item.has_vector)  # type: ignore[attr-defined]  # annotated by catalog.selectors.items_list


class ItemPageSerializer(serializers.Serializer):
    items = ItemListOutSerializer(many=True)
    next_after = serializers.CharField(
        allow_null=True, help_text="Pass as `after` for the next page; null on the last page."
    )

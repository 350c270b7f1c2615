"""Shapes of the item API. Input is validated by catalog.validation.check_item (shared with the import
commands); these serializers document it in OpenAPI and render output."""

from __future__ import annotations

from rest_framework import serializers

from catalog.models import Item


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

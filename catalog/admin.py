"""Admin for the catalog. Saving an item here follows the same rules as the API: the content hash is
refreshed, and a changed text marks the item dirty and queues its embedding after commit."""

from __future__ import annotations

from django.contrib import admin

from catalog.item_vectors import items_vectors_changed_send
from catalog.models import Category, Item
from catalog.tasks import items_embed_enqueue


@admin.register(Item)
class ItemAdmin(admin.ModelAdmin):
    list_display = [
        "external_id",
        "title",
        "brand",
        "price",
        "is_active",
        "in_stock",
        "embedding_model",
        "embedding_dirty",
    ]
    list_filter = ["is_active", "in_stock", "embedding_dirty"]
    search_fields = ["external_id", "title", "brand"]
    readonly_fields = [
        "content_hash",
        "embedded_hash",
        "embedding_model",
        "embedded_at",
        "embedding_dirty",
        "embedding_claimed_at",
        "created_at",
        "updated_at",
    ]
    exclude = ["embedding"]
    raw_id_fields = ["category"]

    def save_model(self, request, obj: Item, form, change: bool) -> None:
        new_hash = obj.compute_content_hash()
        text_changed = new_hash != obj.content_hash
        if text_changed:
            obj.content_hash = new_hash
            obj.embedding_dirty = True
        super().save_model(request, obj, form, change)
        if text_changed:
            items_embed_enqueue(item_pks=[obj.pk])
        items_vectors_changed_send(item_pks=[obj.pk])


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ["path", "depth"]
    search_fields = ["path"]
    readonly_fields = ["created_at", "updated_at"]

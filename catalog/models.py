"""The catalog: items (with their content embedding) and the category tree."""

from __future__ import annotations

import hashlib
import json

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from pgvector.django import VectorField

CATEGORY_SEPARATOR = " > "


class Category(models.Model):
    """A node of the category tree, taken from items' `category_path` (e.g. Electronics > Phones > Apple)."""

    name = models.CharField(max_length=200)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="children"
    )
    path = models.CharField(max_length=1000, unique=True, help_text="Names from the root, joined by ' > '.")
    depth = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["path"]
        verbose_name_plural = "categories"

    def __str__(self) -> str:
        return self.path


class Item(models.Model):
    """A product of the shop, keyed by the shop's own id (`external_id`). Never deleted through the API:
    deleting deactivates it, so its history stays and it is never recommended again."""

    external_id = models.CharField(max_length=255, unique=True)
    title = models.CharField(max_length=500)
    description = models.TextField(blank=True, default="")
    category = models.ForeignKey(
        Category, null=True, blank=True, on_delete=models.SET_NULL, related_name="items"
    )
    category_path = ArrayField(models.CharField(max_length=200), default=list, blank=True)
    price = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True, default="")
    brand = models.CharField(max_length=200, blank=True, default="")
    location = models.CharField(max_length=200, blank=True, default="")
    condition = models.CharField(max_length=50, blank=True, default="")
    image_url = models.URLField(max_length=2000, blank=True, default="")
    attributes = models.JSONField(default=dict, blank=True)
    in_stock = models.BooleanField(default=True)
    stock = models.IntegerField(null=True, blank=True)
    published_at = models.DateTimeField(null=True, blank=True)
    is_active = models.BooleanField(default=True)

    # Embedding state. `content_hash` covers exactly the fields that go into the embedding text, so a price
    # or stock change never triggers a re-embed; `embedded_hash`/`embedding_model` say what the current
    # vector was computed from. `embedding_dirty` is the sweep's work list (partial index below).
    content_hash = models.CharField(max_length=64, blank=True, default="")
    embedding = VectorField(dimensions=settings.EMBEDDING_DIM, null=True, blank=True)
    embedded_hash = models.CharField(max_length=64, blank=True, default="")
    embedding_model = models.CharField(max_length=200, blank=True, default="")
    embedded_at = models.DateTimeField(null=True, blank=True)
    embedding_dirty = models.BooleanField(default=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["external_id"]
        indexes = [
            models.Index(
                fields=["embedding_dirty"],
                name="item_embedding_dirty",
                condition=models.Q(embedding_dirty=True),
            ),
            models.Index(fields=["brand"], name="item_brand"),
            models.Index(fields=["created_at"], name="item_created_at"),
        ]

    def __str__(self) -> str:
        return f"{self.external_id}: {self.title}"

    @property
    def category_label(self) -> str:
        return CATEGORY_SEPARATOR.join(self.category_path)

    @property
    def available(self) -> bool:
        """Sellable now: active, and in stock (a known stock of 0 overrides in_stock)."""
        if not self.is_active or not self.in_stock:
            return False
        return self.stock is None or self.stock > 0

    def compute_content_hash(self) -> str:
        payload = {
            "title": self.title,
            "description": self.description,
            "category_path": list(self.category_path or []),
            "brand": self.brand,
            "condition": self.condition,
            "attributes": self.attributes or {},
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()

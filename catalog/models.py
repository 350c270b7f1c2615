"""The catalog: items (with their content embedding) and the category tree."""

from __future__ import annotations

import hashlib
import re

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.db import models
from django.utils import timezone
from pgvector.django import HnswIndex, VectorField

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
    # Lease of the embedding task that took the item (catalog.services.items_embed); a worker that dies
    # holding it only delays the item until the lease runs out and the sweep takes it again.
    embedding_claimed_at = models.DateTimeField(null=True, blank=True)

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
            # The ANN index. Cosine opclass, because retrieval orders by `embedding <=> q`. m=16 and
            # ef_construction=64 (pgvector's defaults) gave recall@10 0.987-0.997 on 50k vectors close to
            # real ones (bench/hnsw.py), but on the 100k clustered serving catalog users whose vector lies
            # between categories got recall@100 ~0 (worst 5%: 0.000; mean 0.89): the search stays in the
            # wrong cluster, at any ef_search. m=32, ef_construction=128: mean 0.94-0.95, worst 5% 0.26-0.74
            # over two builds, ~1.8x the build time, +3% size (bench/hnsw_params.py; docs/benchmarks.md, "Serving").
            HnswIndex(
                name="item_embedding_hnsw",
                fields=["embedding"],
                m=32,
                ef_construction=128,
                opclasses=["vector_cosine_ops"],
            ),
            models.Index(fields=["brand"], name="item_brand"),
            models.Index(fields=["created_at"], name="item_created_at"),
            # Serving's exact plan for selective filters (recommendations/retrieval/pgvector_backend.py):
            # `category_path @> prefix` and price ranges read only the matching rows instead of the table
            # (a 1% category: ~150 ms -> a few ms on 100k items, bench/filtered_recall.py).
            GinIndex(fields=["category_path"], name="item_category_path_gin"),
            models.Index(fields=["price"], name="item_price"),
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

    def embedding_text(self) -> str:
        """The text the item's vector is computed from: the most informative fields first (title, category
        path, brand, condition, salient attributes, then the description), cut to MAX_EMBEDDING_TEXT_CHARS
        so it fits the model's token limit (MiniLM reads 256 word pieces; ~4 characters each)."""
        parts = [_squash(self.title)]
        if self.category_path:
            parts.append("Category: " + CATEGORY_SEPARATOR.join(_squash(c) for c in self.category_path))
        if self.brand:
            parts.append("Brand: " + _squash(self.brand))
        if self.condition:
            parts.append("Condition: " + _squash(self.condition))
        attributes = _salient_attributes(self.attributes)
        if attributes:
            parts.append(attributes)
        head = ". ".join(p for p in parts if p)
        description = _squash(self.description)
        room = MAX_EMBEDDING_TEXT_CHARS - len(head) - 2
        if description and room > 20:
            if len(description) > room:
                description = description[:room].rsplit(" ", 1)[0]
            head = f"{head}. {description}"
        return head[:MAX_EMBEDDING_TEXT_CHARS]

    def compute_content_hash(self) -> str:
        """sha256 of `embedding_text()`: it changes exactly when the text the vector is computed from
        changes. The model is compared separately (`embedding_model`), so a model change re-embeds too."""
        return hashlib.sha256(self.embedding_text().encode()).hexdigest()


# MiniLM reads at most 256 word pieces; 1,000 characters of product text is ~200-250 of them.
MAX_EMBEDDING_TEXT_CHARS = 1000
MAX_EMBEDDED_ATTRIBUTES = 8
MAX_ATTRIBUTE_VALUE_CHARS = 60
# Attribute keys that identify rather than describe: they only add noise to a semantic vector.
_NON_SALIENT_KEYS = re.compile(r"(^|_)(id|sku|ean|upc|gtin|isbn|mpn|url|image|img|link|barcode)s?($|_)", re.I)


def _squash(text: str) -> str:
    return " ".join(str(text or "").split())


def _salient_attributes(attributes: object) -> str:
    """Short, descriptive attributes as `key: value` in key order (deterministic, so the hash is stable)."""
    if not isinstance(attributes, dict):
        return ""
    pairs = []
    for key in sorted(attributes, key=str):
        value = attributes[key]
        if _NON_SALIENT_KEYS.search(str(key)):
            continue
        if isinstance(value, bool):
            if not value:
                continue
            text = "yes"
        elif isinstance(value, (str, int, float)):
            text = _squash(str(value))
        elif isinstance(value, list) and all(isinstance(v, (str, int, float)) for v in value):
            text = ", ".join(_squash(str(v)) for v in value)
        else:
            continue
        if (
            not text
            or len(text) > MAX_ATTRIBUTE_VALUE_CHARS
            or text.lower().startswith(("http://", "https://"))
        ):
            continue
        pairs.append(f"{_squash(str(key)).replace('_', ' ')}: {text}")
        if len(pairs) == MAX_EMBEDDED_ATTRIBUTES:
            break
    return "; ".join(pairs)


class PromotionTarget(models.TextChoices):
    ITEM = "item"
    CATEGORY = "category"
    BRAND = "brand"


# The surface name that semantic search answers count as. A promotion reaches search only when it names it:
# a pin meant for the home page must not top the results of an unrelated query.
SEARCH_SURFACE = "search"


def surface_covered(*, scope: str, surfaces: list[str] | tuple[str, ...], surface: str, search: bool) -> bool:
    """A promotion's surface rule (see Promotion): search only when named; else all, or the named ones."""
    if search:
        return SEARCH_SURFACE in surfaces
    return scope == PromotionScope.ALL or surface in surfaces


class PromotionScope(models.TextChoices):
    ALL = "all", "All surfaces (semantic search only when named below)"
    NAMED = "named", "Only the surfaces named below"


class Promotion(models.Model):
    """A merchandiser's rule: boost (and optionally pin) an item, a category subtree or a brand, between
    two times, on all surfaces or only some. Applied at serving time by the re-ranking pipeline."""

    name = models.CharField(max_length=200)
    target_type = models.CharField(max_length=20, choices=PromotionTarget.choices)
    item = models.ForeignKey(Item, null=True, blank=True, on_delete=models.CASCADE, related_name="promotions")
    category_path = ArrayField(
        models.CharField(max_length=200),
        default=list,
        blank=True,
        help_text="For a category target: names from the root; the whole subtree is promoted.",
    )
    brand = models.CharField(max_length=200, blank=True, default="")
    boost = models.FloatField(default=1.5, help_text="Multiplies the score of matching items (1 = none).")
    pinned_slot = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Optional 1-based position the best matching item is pinned to."
    )
    surface_scope = models.CharField(
        "applies to", max_length=10, choices=PromotionScope.choices, default=PromotionScope.ALL
    )
    surfaces = ArrayField(
        models.CharField(max_length=100),
        default=list,
        blank=True,
        help_text=f"Surfaces, comma-separated (e.g. home,pdp). Semantic search is `{SEARCH_SURFACE}`: it is "
        "left out unless named, also with all surfaces.",
    )
    starts_at = models.DateTimeField(default=timezone.now)
    ends_at = models.DateTimeField(null=True, blank=True, help_text="Empty = open-ended.")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-starts_at", "name"]
        indexes = [models.Index(fields=["is_active", "starts_at"], name="promotion_live")]

    def __str__(self) -> str:
        return self.name

    def applies_to(self, *, surface: str, search: bool) -> bool:
        """Whether it covers a list served on `surface` (`search`: a semantic search answer)."""
        return surface_covered(
            scope=self.surface_scope, surfaces=self.surfaces, surface=surface, search=search
        )

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        errors: dict[str, str] = {}
        if self.target_type == PromotionTarget.ITEM and self.item_id is None:
            errors["item"] = "An item promotion needs an item."
        if self.target_type == PromotionTarget.CATEGORY and not self.category_path:
            errors["category_path"] = "A category promotion needs a category path."
        if self.target_type == PromotionTarget.BRAND and not self.brand:
            errors["brand"] = "A brand promotion needs a brand."
        if not (0 < (self.boost or 0) <= 100):
            errors["boost"] = "The boost must be above 0 and at most 100."
        if self.pinned_slot is not None and not (1 <= self.pinned_slot <= 100):
            errors["pinned_slot"] = "The pinned slot must be between 1 and 100."
        if self.surface_scope == PromotionScope.NAMED and not self.surfaces:
            errors["surfaces"] = "Name at least one surface, or choose all surfaces."
        if self.surface_scope == PromotionScope.ALL and set(self.surfaces) - {SEARCH_SURFACE}:
            errors["surfaces"] = (
                f"With all surfaces, only `{SEARCH_SURFACE}` may be named (to include semantic search)."
            )
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            errors["ends_at"] = "The end must be after the start."
        if errors:
            raise ValidationError(errors)

"""Reads from the catalog."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db.models import BooleanField, ExpressionWrapper, Max, Q, QuerySet
from django.http import Http404

from catalog.models import SEARCH_SURFACE as SEARCH_SURFACE
from catalog.models import Item, Promotion
from catalog.models import surface_covered as surface_covered

# The items' table, for the raw SQL of retrieval (recommendations.retrieval), which joins it to vectors.
ITEM_TABLE = Item._meta.db_table


def item_get(*, external_id: str) -> Item:
    """The item with this shop id, active or not; Http404 if unknown."""
    item = Item.objects.filter(external_id=external_id).select_related("category").first()
    if item is None:
        raise Http404(f"No item with id {external_id!r}.")
    return item


def item_pk_get(*, external_id: str) -> int:
    """The pk of the item with this shop id, active or not; Http404 if unknown. One index-only read: the
    item pages' serving path needs no more (the whole row carries its vector, ~0.2 ms to parse)."""
    pk = Item.objects.filter(external_id=external_id).values_list("pk", flat=True).first()
    if pk is None:
        raise Http404(f"No item with id {external_id!r}.")
    return pk


@dataclass(frozen=True)
class ItemFilters:
    """The hard filters a list of items takes (the same as the recommendation endpoints')."""

    category: tuple[str, ...] = ()
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    exclude: frozenset[str] = frozenset()  # shop ids
    in_stock: bool | None = None


def items_list(*, filters: ItemFilters, limit: int, after: str = "") -> tuple[list[Item], bool]:
    """Active items matching `filters`, ordered by shop id, the first `limit` after the id `after` (keyset
    paging: a page costs the same at any depth), and whether more follow. One query; vectors are not loaded
    (`has_vector` is annotated)."""
    rows = (
        Item.objects.filter(is_active=True)
        .defer("embedding")
        .annotate(
            has_vector=ExpressionWrapper(
                Q(embedding__isnull=False) & Q(embedding_dirty=False), output_field=BooleanField()
            )
        )
        .order_by("external_id")
    )
    if after:
        rows = rows.filter(external_id__gt=after)
    if filters.category:
        # `@>` can use the GIN index on category_path; the slice makes it a prefix, not "contains"
        rows = rows.filter(category_path__contains=list(filters.category)).filter(
            **{f"category_path__0_{len(filters.category)}": list(filters.category)}
        )
    if filters.min_price is not None:
        rows = rows.filter(price__gte=filters.min_price)
    if filters.max_price is not None:
        rows = rows.filter(price__lte=filters.max_price)
    if filters.exclude:
        rows = rows.exclude(external_id__in=filters.exclude)
    if filters.in_stock is not None:
        rows = rows.filter(in_stock=filters.in_stock)
    page: list[Item] = list(rows[: limit + 1])  # each with `has_vector` annotated
    return page[:limit], len(page) > limit


def item_vectors_changed_at() -> datetime | None:
    """When an item last got a new vector (a new item became retrievable, or one was re-embedded). One
    aggregate over the catalog (no index: ~10 ms at 100,000 items), read once a minute by a sweep."""
    return Item.objects.aggregate(at=Max("embedded_at"))["at"]


def items_active_count() -> int:
    """How many items can be recommended (the denominator of coverage)."""
    return Item.objects.filter(is_active=True).count()


def items_stored_count(*, external_ids: list[str]) -> int:
    """How many of these items are stored (active or not): one indexed count."""
    return Item.objects.filter(external_id__in=external_ids).count()


def items_active_fingerprint() -> tuple[int, str]:
    """The number of active items and an md5 over their pks (the offline evaluation's catalog identity)."""
    pks = items_active_pks()
    return len(pks), hashlib.md5(",".join(map(str, pks)).encode()).hexdigest() if pks else ""


def items_active_pks(*, among: list[int] | None = None) -> list[int]:
    """The pks of every item that can be recommended (of those `among` these pks, if given), in pk order
    (the offline evaluation's catalog, the two-tower vectors to publish)."""
    rows = Item.objects.filter(is_active=True)
    if among is not None:
        rows = rows.filter(pk__in=among)
    return list(rows.order_by("pk").values_list("pk", flat=True))


def item_vectors_iter(*, item_pks: list[int]) -> Iterator[tuple[int, Any]]:
    """(pk, content vector) of each of these items that has a vector, active or not, streamed from the
    database in chunks (the offline evaluation reads the whole catalog's)."""
    rows = Item.objects.filter(pk__in=item_pks, embedding__isnull=False).values_list("pk", "embedding")
    return rows.iterator(chunk_size=2000)


def item_pks_stored(*, item_pks: list[int]) -> set[int]:
    """Which of these item pks are stored (active or not)."""
    return set(Item.objects.filter(pk__in=item_pks).values_list("pk", flat=True))


def promotions_since(*, since: datetime, include_drafts: bool, limit: int) -> list[Promotion]:
    """The `limit` newest promotions (by start) that have not ended before `since`, active ones only unless
    `include_drafts`, each with its item: two queries."""
    rows = Promotion.objects.filter(Q(ends_at__isnull=True) | Q(ends_at__gt=since)).select_related("item")
    if not include_drafts:
        rows = rows.filter(is_active=True)
    return list(rows.order_by("-starts_at", "pk")[:limit])


def item_external_id(*, pk: int) -> str:
    """The external id of the item with this pk ("" when there is none)."""
    return Item.objects.filter(pk=pk).values_list("external_id", flat=True).first() or ""


def item_feature_rows(
    *, item_pks: list[int]
) -> Iterator[tuple[int, Any, list[str] | None, str, Decimal | None]]:
    """(pk, content vector, category path, brand, price) of each of these items that exists, streamed from
    the database in chunks (the two-tower item features)."""
    rows = Item.objects.filter(pk__in=item_pks).values_list(
        "pk", "embedding", "category_path", "brand", "price"
    )
    return rows.iterator(chunk_size=2000)


def item_departments() -> list[str]:
    """The top-level categories of the active catalog, sorted (the storefront's category filter)."""
    paths = Item.objects.filter(is_active=True).values_list("category_path", flat=True)
    return sorted({path[0] for path in paths if path})


def items_active_by_title(*, department: str = "") -> QuerySet[Item]:
    """The active items (of this top-level category, if given) by title, with what a card shows: a
    queryset, for a paginator to slice."""
    items = Item.objects.filter(is_active=True).order_by("title", "pk")
    if department:
        items = items.filter(category_path__0=department)
    return items.only("external_id", "title", "price", "image_url", "category_path", "attributes")


def item_active_get(*, external_id: str) -> Item | None:
    """The active item with this shop id (None if unknown or inactive)."""
    return Item.objects.filter(external_id=external_id, is_active=True).first()


def items_active_by_external_id(*, external_ids: list[str]) -> dict[str, Item]:
    """Shop id -> item for the active items among these ids."""
    return {i.external_id: i for i in Item.objects.filter(external_id__in=external_ids, is_active=True)}


def item_titles(*, external_ids: list[str]) -> dict[str, str]:
    """Shop id -> title for the items among these ids (active or not)."""
    return dict(Item.objects.filter(external_id__in=external_ids).values_list("external_id", "title"))

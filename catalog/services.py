"""Writes to the catalog. Input is already validated (core.payloads.check_item)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone

from catalog.item_vectors import items_vectors_changed_send
from catalog.models import CATEGORY_SEPARATOR, Category, Item
from catalog.signals import items_created
from catalog.tasks import items_embed_enqueue
from core.payloads import ITEM_PATCHABLE

# Fields the client owns, by their model name (the payload's own list; `id` maps to external_id).
CLIENT_FIELDS = list(ITEM_PATCHABLE)


@dataclass
class UpsertResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    # pks of items whose embedding text changed (or that are new): the embedding work list
    content_changed: list[int] = field(default_factory=list)
    linked_events: int = 0


def categories_ensure(*, paths: Iterable[Sequence[str]]) -> dict[tuple[str, ...], Category]:
    """Get or create every category on the given paths (and their ancestors). Returns path -> leaf.
    Safe under concurrency: inserts use ON CONFLICT DO NOTHING on the unique `path`."""
    wanted: set[tuple[str, ...]] = set()
    for path in paths:
        path = tuple(path)
        for depth in range(1, len(path) + 1):
            wanted.add(path[:depth])
    if not wanted:
        return {}
    by_path = {
        tuple(c.path.split(CATEGORY_SEPARATOR)): c
        for c in Category.objects.filter(path__in=[CATEGORY_SEPARATOR.join(p) for p in wanted])
    }
    # Parents first, so each child can point at its parent.
    for path in sorted(wanted - set(by_path), key=len):
        parent = by_path.get(path[:-1]) if len(path) > 1 else None
        Category.objects.bulk_create(
            [Category(name=path[-1], parent=parent, path=CATEGORY_SEPARATOR.join(path), depth=len(path) - 1)],
            ignore_conflicts=True,
        )
        by_path[path] = Category.objects.get(path=CATEGORY_SEPARATOR.join(path))
    return {p: by_path[p] for p in wanted}


def _apply(item: Item, values: dict[str, Any], categories: dict[tuple[str, ...], Category]) -> bool:
    """Copy client values onto the item; returns whether anything changed."""
    changed = False
    for name in CLIENT_FIELDS:
        if name not in values:
            continue
        if getattr(item, name) != values[name]:
            setattr(item, name, values[name])
            changed = True
    if "category_path" in values:
        leaf = categories.get(tuple(values["category_path"])) if values["category_path"] else None
        if item.category_id != (leaf.pk if leaf else None):
            item.category = leaf
            changed = True
    if "stock" in values and "in_stock" not in values and values["stock"] is not None:
        in_stock = values["stock"] > 0
        if item.in_stock != in_stock:
            item.in_stock = in_stock
            changed = True
    return changed


def _refresh_content_hash(item: Item) -> bool:
    new_hash = item.compute_content_hash()
    if new_hash == item.content_hash:
        return False
    item.content_hash = new_hash
    item.embedding_dirty = True
    return True


@transaction.atomic
def item_upsert(*, items: Sequence[dict[str, Any]]) -> UpsertResult:
    """Create or update items by their `id`. Fields absent from an item keep their stored value. Posting
    a deactivated item reactivates it. Runs in one transaction; rows are locked (SELECT ... FOR UPDATE)
    so that concurrent upserts of the same id serialise instead of losing an update."""
    result = UpsertResult()
    # The last occurrence of an id in a batch wins, as if the items were sent one by one.
    by_id: dict[str, dict[str, Any]] = {}
    for values in items:
        by_id[values["id"]] = values
    categories = categories_ensure(
        paths=[v["category_path"] for v in by_id.values() if v.get("category_path")]
    )
    existing = {
        i.external_id: i for i in Item.objects.select_for_update().filter(external_id__in=list(by_id))
    }

    to_create: list[Item] = []
    to_update: list[Item] = []
    for external_id, values in by_id.items():
        item = existing.get(external_id)
        if item is None:
            item = Item(external_id=external_id)
            _apply(item, values, categories)
            _refresh_content_hash(item)
            to_create.append(item)
            continue
        changed = _apply(item, values, categories)
        if not item.is_active:
            item.is_active = True
            changed = True
        if _refresh_content_hash(item):
            changed = True
        if changed:
            to_update.append(item)
        else:
            result.unchanged += 1

    now = timezone.now()
    if to_create:
        for item in to_create:
            item.created_at = item.updated_at = now
        # ON CONFLICT DO UPDATE: a concurrent request may have created the same id since our SELECT.
        Item.objects.bulk_create(
            to_create,
            update_conflicts=True,
            unique_fields=["external_id"],
            update_fields=CLIENT_FIELDS
            + ["category", "content_hash", "embedding_dirty", "is_active", "updated_at"],
        )
        result.created = len(to_create)
    if to_update:
        for item in to_update:
            item.updated_at = now
        Item.objects.bulk_update(
            to_update,
            CLIENT_FIELDS + ["category", "content_hash", "embedding_dirty", "is_active", "updated_at"],
            batch_size=500,
        )
        result.updated = len(to_update)

    changed_ids = [i.external_id for i in to_create + to_update if i.embedding_dirty]
    result.content_changed = (
        list(Item.objects.filter(external_id__in=changed_ids).values_list("pk", flat=True))
        if changed_ids
        else []
    )
    created = [i.external_id for i in to_create]
    if created:
        for _receiver, linked in items_created.send(sender=Item, external_ids=created):
            result.linked_events += linked if isinstance(linked, int) else 0
    # After commit: embed the new texts (batched by the task); tell vector backends about changed rows.
    items_embed_enqueue(item_pks=result.content_changed)
    items_vectors_changed_send(item_pks=[i.pk for i in to_update])
    return result


@transaction.atomic
def item_update(*, item: Item, values: dict[str, Any]) -> Item:
    """PATCH: change the given client fields of one item."""
    item = Item.objects.select_for_update().get(pk=item.pk)
    categories = categories_ensure(paths=[values["category_path"]]) if values.get("category_path") else {}
    changed = _apply(item, values, categories)
    text_changed = _refresh_content_hash(item)
    if changed or text_changed:
        item.save()
        if text_changed:
            items_embed_enqueue(item_pks=[item.pk])
        items_vectors_changed_send(item_pks=[item.pk])
    return item


def item_deactivate(*, item: Item) -> Item:
    """DELETE: the item is never recommended again; its row and history stay."""
    if item.is_active:
        Item.objects.filter(pk=item.pk).update(is_active=False, updated_at=timezone.now())
        item.is_active = False
        items_vectors_changed_send(item_pks=[item.pk])
    return item

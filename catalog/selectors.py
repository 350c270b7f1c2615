"""Reads from the catalog."""

from __future__ import annotations

from django.http import Http404

from catalog.models import Item


def item_get(*, external_id: str) -> Item:
    """The item with this shop id, active or not; Http404 if unknown."""
    item = Item.objects.filter(external_id=external_id).select_related("category").first()
    if item is None:
        raise Http404(f"No item with id {external_id!r}.")
    return item

"""Why an item is recommended, said for a person: "Because you viewed Trail running shoes"."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# reason type -> the sentence, with {title} for the item the reason points at (when it points at one)
_WITH_ITEM = {
    "because_you_viewed": "Because you viewed {title}",
    "because_you_bought": "Because you bought {title}",
    "similar_to": "Similar to {title}",
    "bought_together": "Often bought with {title}",
    "viewed_together": "Often viewed with {title}",
}
_PLAIN = {
    "trending": "Trending now",
    "new_arrival": "New arrival",
    "matches_query": "Matches your search",
    "promoted": "Featured",
    "recommended": "Picked for you",
}


def reason_item_ids(reasons: list[Mapping[str, Any]]) -> set[str]:
    """The item ids the reasons point at (whose titles the sentences need)."""
    return {
        r["item_id"] for r in reasons if isinstance(r.get("item_id"), str) and r.get("type") in _WITH_ITEM
    }


def reason_text(reason: Mapping[str, Any] | None, *, titles: Mapping[str, str]) -> str:
    """The sentence for `reason` (an answer item's `reason`); `titles` maps item ids to titles. An item
    the catalog no longer has is named "an item"; an unknown reason type gets ""."""
    if not reason:
        return ""
    kind = reason.get("type", "")
    if kind in _WITH_ITEM:
        return _WITH_ITEM[kind].format(title=titles.get(reason.get("item_id") or "", "an item you looked at"))
    return _PLAIN.get(kind, "")

"""Reads for the promotion admin: the facts `promotion_explain` needs, and recent users and sessions to
preview. Kept apart from the serving selectors: none of this is on the request path."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from catalog.selectors import promotions_since
from core.payloads import CATEGORY_SEPARATOR
from interactions.selectors import events_recent_people
from recommendations.promotion_explain import ItemFacts, PromotionFacts
from recommendations.selectors import PROMOTION_HISTORY_DAYS

# At most this many promotions are explained under a preview (newest first): a page, not a report.
PREVIEW_PROMOTIONS = 50
# How many recent users and sessions the preview offers, and how many recent events are scanned for them
# (the newest through the timestamp index; no DISTINCT over the whole table).
PREVIEW_PEOPLE = 8
PREVIEW_EVENTS_SCANNED = 2000
PREVIEW_SESSION_ITEMS = 10


def promotion_target_label(promotion: Any) -> str:
    """The target for a person, with the item's external id (never its internal number). `promotion`: a
    catalog Promotion."""
    if promotion.target_type == "item":
        return f"item {promotion.item.external_id}" if promotion.item_id else "item ?"
    if promotion.target_type == "category":
        return "category " + CATEGORY_SEPARATOR.join(promotion.category_path)
    return f"brand {promotion.brand}"


def item_facts(item: Any) -> ItemFacts:
    """The facts about a catalog Item that decide whether it can be served."""
    return ItemFacts(
        external_id=item.external_id,
        title=item.title,
        is_active=item.is_active,
        in_stock=item.in_stock,
        has_embedding=item.embedding is not None,
        category_path=tuple(item.category_path or ()),
    )


def promotion_facts(promotion: Any) -> PromotionFacts:
    """The facts about a catalog Promotion (its item selected with it) that `promotion_explain` reads."""
    return PromotionFacts(
        promotion_id=promotion.pk or 0,
        name=promotion.name,
        target_type=promotion.target_type,
        target=promotion_target_label(promotion),
        is_active=promotion.is_active,
        starts_at=promotion.starts_at,
        ends_at=promotion.ends_at,
        surface_scope=promotion.surface_scope,
        surfaces=tuple(promotion.surfaces or ()),
        pinned_slot=promotion.pinned_slot,
        item=item_facts(promotion.item) if promotion.item_id else None,
    )


def promotions_preview_facts(*, now: datetime, include_drafts: bool) -> list[PromotionFacts]:
    """The promotions a preview explains: active ones (and drafts when asked) that have not ended more than
    PROMOTION_HISTORY_DAYS ago. Two queries (promotions with their items)."""
    since = now - timedelta(days=PROMOTION_HISTORY_DAYS)
    rows = promotions_since(since=since, include_drafts=include_drafts, limit=PREVIEW_PROMOTIONS)
    return [promotion_facts(p) for p in rows]


@dataclass(frozen=True)
class RecentSession:
    session_id: str
    item_ids: tuple[str, ...]  # oldest first, as the session preview takes them


def preview_recent_people() -> tuple[list[str], list[RecentSession]]:
    """A few users and anonymous sessions with recent events, newest first, to pick in the preview."""
    rows = events_recent_people(limit=PREVIEW_EVENTS_SCANNED)
    users = list(dict.fromkeys(u for u, _, _ in rows if u))[:PREVIEW_PEOPLE]
    sessions: dict[str, list[str]] = {}
    for _user, session_id, item_id in rows:
        if not session_id:
            continue
        if session_id not in sessions and len(sessions) >= PREVIEW_PEOPLE:
            continue
        items = sessions.setdefault(session_id, [])
        if item_id not in items and len(items) < PREVIEW_SESSION_ITEMS:
            items.append(item_id)  # newest first here
    return users, [RecentSession(s, tuple(reversed(items))) for s, items in sessions.items()]

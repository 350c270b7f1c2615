"""Why a promotion did or did not shape a list: the admin preview's "why not", and the warnings shown when a
promotion is saved. Pure: the facts about each promotion and its item are read by the caller
(`selectors.promotions_preview_facts`), and the served list is the preview's answer.

The checks follow the order in which serving drops a promotion: state, window, surface, the item's own
state, the list's filters, then what happened inside the re-ranking (a pin slot taken by another promotion,
a boost too weak to reach the list)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from catalog.selectors import SEARCH_SURFACE, surface_covered


@dataclass(frozen=True)
class ItemFacts:
    """The state of a promotion's item that decides whether it can be served."""

    external_id: str
    title: str = ""
    is_active: bool = True
    in_stock: bool = True
    has_embedding: bool = True
    category_path: tuple[str, ...] = ()


@dataclass(frozen=True)
class PromotionFacts:
    """A promotion as the explanation needs it, with its item (for an item target)."""

    promotion_id: int
    name: str
    target_type: str
    target: str  # for a person: "item demo-002637", "category Home > Kitchen", "brand Sockit"
    is_active: bool
    starts_at: datetime
    ends_at: datetime | None
    surface_scope: str
    surfaces: tuple[str, ...] = ()
    pinned_slot: int | None = None
    item: ItemFacts | None = None


@dataclass(frozen=True)
class Explanation:
    """One promotion's effect on one list: `applied`, or the first reason it was not."""

    promotion_id: int
    name: str
    target: str
    applied: bool
    code: str  # applied / draft / not_started / ended / other_surface / search_not_named / ...
    text: str


@dataclass(frozen=True)
class ListFacts:
    """The list being explained and how it was asked for."""

    items: Sequence[dict[str, Any]]  # the answer's items: "id" (external), "reason", in order
    surface: str = ""
    search: bool = False
    now: datetime | None = None
    category: tuple[str, ...] = ()
    in_stock_only: bool = True
    include_drafts: bool = False
    promotions_enabled: bool = True
    limit: int = 10
    names: dict[int, str] = field(default_factory=dict)  # promotion id -> name, for "lost to"


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _surfaces_text(p: PromotionFacts) -> str:
    named = ", ".join(p.surfaces)
    return f"all surfaces{' and ' + named if named else ''}" if p.surface_scope == "all" else named


def item_unservable(item: ItemFacts, *, in_stock_only: bool = True) -> list[str]:
    """Why an item cannot be served at all, for a person (empty: it can). Used by the save warning."""
    problems = []
    if not item.is_active:
        problems.append("it is inactive (deleted from the catalog)")
    if not item.in_stock and in_stock_only:
        problems.append("it is out of stock")
    if not item.has_embedding:
        problems.append("it has no embedding yet, so no list finds it by similarity (a pin still places it)")
    return problems


def _slot_taken(p: PromotionFacts, facts: ListFacts) -> str:
    """If another promotion's item holds `p`'s pin slot, says so (else "")."""
    if not p.pinned_slot or p.pinned_slot > len(facts.items):
        return ""
    holder = facts.items[p.pinned_slot - 1]
    reason = holder.get("reason") or {}
    if p.item is not None and holder["id"] == p.item.external_id:
        return ""
    if reason.get("type") != "promoted" or reason.get("promotion_id") == p.promotion_id:
        return ""
    other = facts.names.get(reason.get("promotion_id"), f"#{reason.get('promotion_id')}")
    return f"Its pin slot {p.pinned_slot} went to “{other}” ({holder['id']}), which scored higher; one item per slot."


def promotion_explain(p: PromotionFacts, facts: ListFacts) -> Explanation:
    """Whether `p` shaped the list in `facts`, and if not, the first reason why."""

    def out(code: str, text: str, applied: bool = False) -> Explanation:
        return Explanation(p.promotion_id, p.name, p.target, applied, code, text)

    if not facts.promotions_enabled:
        return out("profile_off", "The re-ranking profile of this surface has promotions turned off.")
    if not p.is_active and not facts.include_drafts:
        return out("draft", "It is inactive (a draft): tick “include drafts” to preview it.")
    if facts.now is not None and p.starts_at > facts.now:
        return out("not_started", f"Outside its window: it starts at {_when(p.starts_at)}.")
    if facts.now is not None and p.ends_at is not None and p.ends_at <= facts.now:
        return out("ended", f"Outside its window: it ended at {_when(p.ends_at)}.")
    if not surface_covered(
        scope=p.surface_scope, surfaces=p.surfaces, surface=facts.surface, search=facts.search
    ):
        if facts.search:
            return out(
                "search_not_named",
                f"Another surface: semantic search is left out unless `{SEARCH_SURFACE}` is named "
                f"(it applies to {_surfaces_text(p)}).",
            )
        return out(
            "other_surface",
            f"Another surface: it applies to {_surfaces_text(p)}, not to "
            + (f"“{facts.surface}”." if facts.surface else "a list asked for with no surface."),
        )

    positions = {str(item["id"]): n for n, item in enumerate(facts.items, start=1)}
    promoted_here = [
        (n, item)
        for n, item in enumerate(facts.items, start=1)
        if (item.get("reason") or {}).get("type") == "promoted"
        and (item.get("reason") or {}).get("promotion_id") == p.promotion_id
    ]
    if p.target_type == "item" and p.item is not None:
        position = positions.get(p.item.external_id)
        if position is not None:
            lost = _slot_taken(p, facts)
            if lost and position != p.pinned_slot:
                return out("slot_lost", f"{lost} {p.item.external_id} is at position {position} instead.")
            return out("applied", f"Applied: {p.item.external_id} is at position {position}.", applied=True)
    elif promoted_here:
        where = ", ".join(f"{item['id']} at {n}" for n, item in promoted_here[:5])
        return out("applied", f"Applied: {where}.", applied=True)

    if p.target_type == "item":
        if p.item is None:
            return out("no_item", "Its item no longer exists.")
        if not p.item.is_active:
            return out(
                "item_inactive", f"Its item {p.item.external_id} is inactive (deleted from the catalog)."
            )
        if not p.item.in_stock and facts.in_stock_only:
            return out("out_of_stock", f"Its item {p.item.external_id} is out of stock.")
        if facts.category and p.item.category_path[: len(facts.category)] != facts.category:
            return out(
                "filtered_out",
                f"Filtered out: {p.item.external_id} is not in the list's category filter "
                f"“{' > '.join(facts.category)}”.",
            )
        if p.pinned_slot:
            lost = _slot_taken(p, facts)
            if lost:
                return out("slot_lost", lost)
            if p.pinned_slot > facts.limit:
                return out(
                    "slot_beyond_list", f"Its pin slot {p.pinned_slot} is beyond this list of {facts.limit}."
                )
            return out("filtered_out", f"Filtered out: {p.item.external_id} did not pass the list's filters.")
        if not p.item.has_embedding:
            return out(
                "no_embedding",
                f"Its item {p.item.external_id} has no embedding yet, so retrieval cannot find it.",
            )
        return out(
            "too_weak",
            f"Boosted, but {p.item.external_id} was not among this list's candidates or stayed below its top "
            f"{facts.limit}.",
        )
    return out(
        "no_match",
        f"No item of this {p.target_type} was among the candidates high enough to reach the top {facts.limit}.",
    )


def promotions_explain(promotions: Sequence[PromotionFacts], facts: ListFacts) -> list[Explanation]:
    """Every promotion's explanation: the ones that did not apply first, then the applied ones."""
    names = {p.promotion_id: p.name for p in promotions}
    facts = ListFacts(**{**facts.__dict__, "names": {**names, **facts.names}})
    explanations = [promotion_explain(p, facts) for p in promotions]
    return sorted(explanations, key=lambda e: (e.applied, e.name.casefold(), e.promotion_id))

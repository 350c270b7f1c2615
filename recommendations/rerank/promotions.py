"""Merchandiser promotions: boost matching items, and pin the best matching item to a slot."""

from __future__ import annotations

from dataclasses import dataclass

from recommendations.rerank.candidates import Scored, evolve
from recommendations.rerank.inventory import score_scale


@dataclass(frozen=True)
class PromotionRule:
    """A live promotion, as the pipeline sees it (catalog.Promotion, already filtered by time and surface)."""

    promotion_id: int
    target_type: str  # item / category / brand
    item_pk: int | None = None
    category_path: tuple[str, ...] = ()
    brand: str = ""
    boost: float = 1.0
    pinned_slot: int | None = None

    def matches(self, c: Scored) -> bool:
        if self.target_type == "item":
            return c.pk == self.item_pk
        if self.target_type == "category":
            return (
                bool(self.category_path) and c.category_path[: len(self.category_path)] == self.category_path
            )
        if self.target_type == "brand":
            return bool(self.brand) and c.brand.casefold() == self.brand.casefold()
        return False


def promotions_boost(candidates: list[Scored], *, rules: list[PromotionRule]) -> list[Scored]:
    """Multiplies the score of each item by the boosts of the promotions it matches (a boost below 1
    makes it worse) and marks it promoted; records the smallest pinned slot among them."""
    if not rules:
        return list(candidates)
    out = []
    for c in candidates:
        matching = [r for r in rules if r.matches(c)]
        if not matching:
            out.append(c)
            continue
        score = c.score
        for rule in matching:
            # multiplicative on both signs: a boost above 1 always helps, one below 1 always hurts
            score = score_scale(score, rule.boost)
        slots = [r.pinned_slot for r in matching if r.pinned_slot]
        out.append(
            evolve(
                c,
                score=score,
                promoted=True,
                pinned_slot=min(slots) if slots else None,
                reason={"type": "promoted", "promotion_id": matching[0].promotion_id},
            )
        )
    return out


def promotions_pin(ranked: list[Scored], pool: list[Scored], *, limit: int) -> list[Scored]:
    """Puts, for each pinned slot, the best-scored pinned item (from `ranked` or `pool`) at that slot
    (1-based), shifting the others down, and cuts the list to `limit`. One item per slot."""
    pinned_by_slot: dict[int, Scored] = {}
    pinned = [c for c in ranked if c.pinned_slot] + [c for c in pool if c.pinned_slot]
    for c in sorted(pinned, key=lambda c: (-c.score, c.pk)):  # only pinned items: no sort of ~500 otherwise
        if (
            c.pinned_slot
            and c.pinned_slot not in pinned_by_slot
            and c.pk not in {p.pk for p in pinned_by_slot.values()}
        ):
            pinned_by_slot[c.pinned_slot] = c
    if not pinned_by_slot:
        return list(ranked[:limit])
    pinned_pks = {c.pk for c in pinned_by_slot.values()}
    out = [c for c in ranked if c.pk not in pinned_pks]
    for slot in sorted(pinned_by_slot):
        out.insert(min(slot - 1, len(out)), pinned_by_slot[slot])
    return out[:limit]

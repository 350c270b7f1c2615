"""Merchandiser promotions: boost matching items, and pin the best matching item to a slot."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recommendations.rerank.candidates import Candidates, Scored, concat, order_by_score
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

    def mask(self, candidates: Candidates) -> np.ndarray:
        """Which candidates the rule matches: the item, the category subtree (a prefix of the path), or
        the brand (case-insensitive)."""
        if self.target_type == "item":
            return candidates.pk == self.item_pk
        if self.target_type == "category" and self.category_path:
            depth, prefix = len(self.category_path), self.category_path
            return np.fromiter((p[:depth] == prefix for p in candidates.category), bool, len(candidates))
        if self.target_type == "brand" and self.brand:
            brand = self.brand.casefold()
            return np.fromiter((b.casefold() == brand for b in candidates.brand), bool, len(candidates))
        return np.zeros(len(candidates), dtype=bool)

    def matches(self, c: Scored) -> bool:
        return bool(self.mask(Candidates.from_rows([c]))[0])


def promotions_boost(candidates: Candidates, *, rules: list[PromotionRule]) -> Candidates:
    """Multiplies the score of each item by the boosts of the promotions it matches (a boost below 1
    makes it worse) and marks it promoted by the first of them; records the smallest pinned slot among
    them."""
    if not rules:
        return candidates
    score = candidates.score.copy()
    first = np.zeros(len(candidates), np.int64)  # the first matching rule's id
    pinned = np.zeros(len(candidates), np.int64)  # the smallest pinned slot of the matching rules
    for rule in rules:
        match = rule.mask(candidates)
        if not match.any():
            continue
        # multiplicative on both signs: a boost above 1 always helps, one below 1 always hurts
        score[match] = score_scale(score[match], rule.boost)
        first[match & (first == 0)] = rule.promotion_id
        if rule.pinned_slot:
            pinned[match & ((pinned == 0) | (pinned > rule.pinned_slot))] = rule.pinned_slot
    matched = first != 0
    return candidates.with_columns(
        score=score,
        promotion_id=np.where(matched, first, candidates.promotion_id),
        pinned_slot=np.where(matched, pinned, candidates.pinned_slot),
    )


def promotions_pin(ranked: Candidates, pool: Candidates, *, limit: int) -> Candidates:
    """Puts, for each pinned slot, the best-scored pinned item (from `ranked` or `pool`) at that slot
    (1-based), shifting the others down, and cuts the list to `limit`. One item per slot."""
    pinned = concat([ranked.take(ranked.pinned_slot > 0), pool.take(pool.pinned_slot > 0)])
    if not len(pinned):
        return ranked.take(slice(0, limit))
    by_slot: dict[int, int] = {}  # slot -> row of `pinned`
    taken: set[int] = set()
    for i in order_by_score(pinned.score, pinned.pk):  # only pinned items: no sort of ~500 otherwise
        slot, pk = int(pinned.pinned_slot[i]), int(pinned.pk[i])
        if slot not in by_slot and pk not in taken:
            by_slot[slot] = int(i)
            taken.add(pk)
    rest = ranked.without(pinned.pk[list(by_slot.values())])
    order: list[tuple[str, int]] = [("rest", i) for i in range(len(rest))]
    for slot in sorted(by_slot):
        order.insert(min(slot - 1, len(order)), ("pinned", by_slot[slot]))
    order = order[:limit]
    both = concat([rest, pinned])
    index = np.array([i if part == "rest" else len(rest) + i for part, i in order], dtype=np.intp)
    return both.take(index)

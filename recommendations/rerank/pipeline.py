"""The re-ranking pipeline: the steps in order, configured by a surface's RerankProfile."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from recommendations.rerank.candidates import Candidates
from recommendations.rerank.diversity import caps_select, mmr_select
from recommendations.rerank.duplicates import duplicates_collapse
from recommendations.rerank.exploration import exploration_slots
from recommendations.rerank.freshness import freshness_boost
from recommendations.rerank.history import history_exclude
from recommendations.rerank.inventory import inventory_apply
from recommendations.rerank.popularity import popularity_penalize
from recommendations.rerank.promotions import PromotionRule, promotions_boost, promotions_pin

# How many of the best candidates the near-duplicate and diversity steps look at (they are O(n * limit));
# the rest could not reach the list anyway.
POOL_FACTOR = 5
POOL_MIN = 50


@dataclass(frozen=True)
class RerankConfig:
    """The weights of a RerankProfile (same field names), without the database."""

    freshness_weight: float = 0.0
    freshness_half_life_days: float = 30.0
    in_stock_only: bool = True
    low_stock_threshold: int = 3
    low_stock_factor: float = 0.9
    exclude_bought_in: tuple[str, ...] = ("user", "similar", "session", "trending")
    exclude_seen_in: tuple[str, ...] = ("user",)
    promotions_enabled: bool = True
    popularity_penalty: float = 0.0
    duplicate_similarity: float = 0.97
    diversity_mode: str = "mmr"
    mmr_lambda: float = 0.95
    max_per_category: int = 0
    max_per_brand: int = 0
    exploration_share: float = 0.1
    exploration_max_age_days: float = 14.0

    @classmethod
    def from_profile(cls, profile: Any) -> RerankConfig:
        values = {f.name: getattr(profile, f.name) for f in fields(cls)}
        values["exclude_bought_in"] = tuple(values["exclude_bought_in"])
        values["exclude_seen_in"] = tuple(values["exclude_seen_in"])
        return cls(**values)


@dataclass(frozen=True)
class RerankContext:
    """What the request knows: the scenario, the size of the answer, the user's history, live promotions."""

    scenario: str
    limit: int
    now: datetime
    bought_pks: Collection[int] = frozenset()
    seen_pks: Collection[int] = frozenset()
    promotions: list[PromotionRule] = field(default_factory=list)


def pool_size(limit: int) -> int:
    return max(limit * POOL_FACTOR, POOL_MIN)


# The steps, in the order `rerank` runs them. `skip` turns any of them off (the re-ranking ablation in
# `training.ablation` measures what each one costs); a profile turns them off with its own settings.
STEPS = (
    "inventory",  # drop unavailable items, demote low stock
    "history",  # hide what the user bought / saw, per scenario
    "freshness",  # boost new items
    "popularity",  # penalty against popularity bias
    "promotions",  # boost, then pin after diversity
    "duplicates",  # collapse near duplicates
    "diversity",  # MMR or caps
    "exploration",  # slots for new items without interactions
)


def rerank(
    candidates: Candidates,
    *,
    config: RerankConfig,
    context: RerankContext,
    skip: Collection[str] = frozenset(),
) -> Candidates:
    """Candidates (any order) -> the answer, at most `context.limit` items, best first. `skip` names steps
    of STEPS to leave out; with every step skipped the answer is the candidates by score."""
    unknown = set(skip) - set(STEPS)
    if unknown:
        raise ValueError(
            f"unknown re-ranking step(s) {', '.join(sorted(unknown))}; known: {', '.join(STEPS)}"
        )
    items = candidates
    if "inventory" not in skip:
        items = inventory_apply(
            items,
            in_stock_only=config.in_stock_only,
            low_stock_threshold=config.low_stock_threshold,
            low_stock_factor=config.low_stock_factor,
        )
    if "history" not in skip:
        items = history_exclude(
            items,
            bought_pks=context.bought_pks,
            seen_pks=context.seen_pks,
            exclude_bought=context.scenario in config.exclude_bought_in,
            exclude_seen=context.scenario in config.exclude_seen_in,
        )
    if "freshness" not in skip:
        items = freshness_boost(
            items,
            now=context.now,
            weight=config.freshness_weight,
            half_life_days=config.freshness_half_life_days,
        )
    if "popularity" not in skip:
        items = popularity_penalize(items, penalty=config.popularity_penalty)
    promotions = config.promotions_enabled and "promotions" not in skip
    if promotions:
        items = promotions_boost(items, rules=context.promotions)
    items = items.by_score()
    pool = items.take(slice(0, pool_size(context.limit)))
    if "duplicates" not in skip:
        pool = duplicates_collapse(pool, threshold=config.duplicate_similarity)
    if "diversity" in skip or config.diversity_mode not in ("mmr", "caps"):
        ranked = pool.take(slice(0, context.limit))
    elif config.diversity_mode == "mmr":
        ranked = mmr_select(pool, k=context.limit, lam=config.mmr_lambda)
    else:
        ranked = caps_select(
            pool,
            k=context.limit,
            max_per_category=config.max_per_category,
            max_per_brand=config.max_per_brand,
        )
    if "exploration" not in skip:
        ranked = exploration_slots(
            ranked,
            items.without(ranked.pk),
            limit=context.limit,
            share=config.exploration_share,
            max_age_days=config.exploration_max_age_days,
            now=context.now,
        )
    if not promotions:
        return ranked.take(slice(0, context.limit))
    return promotions_pin(ranked, items.without(ranked.pk), limit=context.limit)

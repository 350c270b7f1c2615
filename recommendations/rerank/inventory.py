"""Inventory: never show what cannot be bought, and show what is nearly gone a little less."""

from __future__ import annotations

from recommendations.rerank.candidates import Scored, evolve


def score_scale(score: float, factor: float) -> float:
    """Scales a score by `factor` in the direction that keeps its meaning whatever its sign: a factor below
    1 makes it worse, above 1 better."""
    return score * factor if score >= 0 else score / max(factor, 1e-9)


def inventory_apply(
    candidates: list[Scored], *, in_stock_only: bool, low_stock_threshold: int, low_stock_factor: float
) -> list[Scored]:
    """Drops unavailable items (checked again on fresh rows: a backend with its own index may lag behind a
    stock change) and multiplies the score of items with `0 < stock <= low_stock_threshold`."""
    out = []
    for c in candidates:
        if in_stock_only and not c.available:
            continue
        if c.stock is not None and 0 < c.stock <= low_stock_threshold:
            c = evolve(c, score=score_scale(c.score, low_stock_factor))
        out.append(c)
    return out

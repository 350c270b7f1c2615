"""Inventory: never show what cannot be bought, and show what is nearly gone a little less."""

from __future__ import annotations

import numpy as np

from recommendations.rerank.candidates import Candidates


def score_scale(score: np.ndarray | float, factor: float) -> np.ndarray:
    """Scales scores by `factor` in the direction that keeps their meaning whatever their sign: a factor below
    1 makes them worse, above 1 better."""
    return np.where(np.asarray(score) >= 0, np.multiply(score, factor), np.divide(score, max(factor, 1e-9)))


def inventory_apply(
    candidates: Candidates, *, in_stock_only: bool, low_stock_threshold: int, low_stock_factor: float
) -> Candidates:
    """Drops unavailable items (checked again on fresh rows: a backend with its own index may lag behind a
    stock change) and multiplies the score of items with `0 < stock <= low_stock_threshold`."""
    out = candidates.take(candidates.available) if in_stock_only else candidates
    low = (out.stock > 0) & (out.stock <= low_stock_threshold)
    if not low.any():
        return out
    return out.with_score(np.where(low, score_scale(out.score, low_stock_factor), out.score))

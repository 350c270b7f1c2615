"""Diversity: maximal marginal relevance (MMR), or caps per category and per brand."""

from __future__ import annotations

import numpy as np

from recommendations.rerank.candidates import Scored


def mmr_select(candidates: list[Scored], *, k: int, lam: float) -> list[Scored]:
    """Picks `k` items greedily by `lam * score - (1 - lam) * max similarity to the items picked so far`
    (Carbonell & Goldstein, 1998). lam = 1 keeps the ranking; lower values trade relevance for variety.
    Items without a vector count as dissimilar to everything."""
    if lam >= 1.0 or len(candidates) <= 1:
        return sorted(candidates, key=lambda c: (-c.score, c.pk))[:k]
    pool = list(candidates)
    dim = next((len(c.vector) for c in pool if c.vector is not None), 0)
    matrix = (
        np.stack([c.vector if c.vector is not None else np.zeros(dim, np.float32) for c in pool])
        if dim
        else None
    )
    scores = np.array([c.score for c in pool])
    max_sim = np.zeros(len(pool))
    chosen: list[int] = []
    remaining = np.ones(len(pool), dtype=bool)
    while len(chosen) < min(k, len(pool)):
        mmr = lam * scores - (1.0 - lam) * max_sim
        mmr[~remaining] = -np.inf
        best = int(np.argmax(mmr))  # argmax takes the first of ties: pool order (rank) breaks them
        chosen.append(best)
        remaining[best] = False
        if matrix is not None:
            max_sim = np.maximum(max_sim, matrix @ matrix[best])
    return [pool[i] for i in chosen]


def caps_select(
    candidates: list[Scored], *, k: int, max_per_category: int, max_per_brand: int
) -> list[Scored]:
    """Best first, skipping an item once its category (full path) or brand already has its cap (0 = no
    cap). Items without a brand are not capped by brand."""
    picked: list[Scored] = []
    per_category: dict[tuple[str, ...], int] = {}
    per_brand: dict[str, int] = {}
    for c in sorted(candidates, key=lambda c: (-c.score, c.pk)):
        if len(picked) == k:
            break
        if max_per_category and per_category.get(c.category_path, 0) >= max_per_category:
            continue
        if max_per_brand and c.brand and per_brand.get(c.brand, 0) >= max_per_brand:
            continue
        picked.append(c)
        per_category[c.category_path] = per_category.get(c.category_path, 0) + 1
        if c.brand:
            per_brand[c.brand] = per_brand.get(c.brand, 0) + 1
    return picked

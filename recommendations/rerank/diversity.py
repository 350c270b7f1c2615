"""Diversity: maximal marginal relevance (MMR), or caps per category and per brand."""

from __future__ import annotations

import numpy as np

from recommendations.rerank.candidates import Candidates


def mmr_select(candidates: Candidates, *, k: int, lam: float) -> Candidates:
    """Picks `k` items greedily by `lam * score - (1 - lam) * max similarity to the items picked so far`
    (Carbonell & Goldstein, 1998). lam = 1 keeps the ranking; lower values trade relevance for variety.
    Items without a vector count as dissimilar to everything (their row of `vectors` is zeros)."""
    if lam >= 1.0 or len(candidates) <= 1:
        return candidates.by_score().take(slice(0, k))
    matrix = candidates.vectors
    scores = candidates.score
    max_sim = np.zeros(len(candidates))
    chosen: list[int] = []
    remaining = np.ones(len(candidates), dtype=bool)
    while len(chosen) < min(k, len(candidates)):
        mmr = lam * scores - (1.0 - lam) * max_sim
        mmr[~remaining] = -np.inf
        best = int(np.argmax(mmr))  # argmax takes the first of ties: pool order (rank) breaks them
        chosen.append(best)
        remaining[best] = False
        if matrix.shape[1]:
            max_sim = np.maximum(max_sim, matrix @ matrix[best])
    return candidates.take(np.array(chosen, dtype=np.intp))


def caps_select(candidates: Candidates, *, k: int, max_per_category: int, max_per_brand: int) -> Candidates:
    """Best first, skipping an item once its category (full path) or brand already has its cap (0 = no
    cap). Items without a brand are not capped by brand."""
    ranked = candidates.by_score()
    picked: list[int] = []
    per_category: dict[tuple[str, ...], int] = {}
    per_brand: dict[str, int] = {}
    for i, (path, brand) in enumerate(zip(ranked.category, ranked.brand, strict=True)):
        if len(picked) == k:
            break
        if max_per_category and per_category.get(path, 0) >= max_per_category:
            continue
        if max_per_brand and brand and per_brand.get(brand, 0) >= max_per_brand:
            continue
        picked.append(i)
        per_category[path] = per_category.get(path, 0) + 1
        if brand:
            per_brand[brand] = per_brand.get(brand, 0) + 1
    return ranked.take(np.array(picked, dtype=np.intp))

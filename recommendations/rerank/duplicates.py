"""Near-duplicate collapsing: not ten variations of the same item. Among items whose vectors are almost
identical, only the best ranked stays."""

from __future__ import annotations

import numpy as np

from recommendations.rerank.candidates import Candidates


def duplicates_collapse(candidates: Candidates, *, threshold: float) -> Candidates:
    """`candidates` must be ranked best first. Keeps an item unless its cosine similarity to an item kept
    before it is at least `threshold`. Items without a vector are always kept."""
    if threshold >= 1.0:
        return candidates
    with_vector = np.flatnonzero(candidates.has_vector)
    if len(with_vector) < 2:
        return candidates
    # One matrix product for every pair (the pool is at most max(5 x limit, 50) items), instead of stacking
    # the kept vectors again for each candidate.
    matrix = candidates.vectors[with_vector]
    near = np.triu((matrix @ matrix.T) >= threshold, k=1)  # each item against the items ranked below it
    dropped = np.zeros(len(with_vector), dtype=bool)
    for row in np.flatnonzero(near.any(axis=1)):  # most items have no near duplicate at all
        if not dropped[row]:
            dropped |= near[row]
    keep = np.ones(len(candidates), dtype=bool)
    keep[with_vector[dropped]] = False
    return candidates.take(keep)

"""Near-duplicate collapsing: not ten variations of the same item. Among items whose vectors are almost
identical, only the best ranked stays."""

from __future__ import annotations

import numpy as np

from recommendations.rerank.candidates import Scored


def duplicates_collapse(candidates: list[Scored], *, threshold: float) -> list[Scored]:
    """`candidates` must be ranked best first. Keeps an item unless its cosine similarity to an item kept
    before it is at least `threshold`. Items without a vector are always kept."""
    if threshold >= 1.0:
        return list(candidates)
    with_vector = [i for i, c in enumerate(candidates) if c.vector is not None]
    if len(with_vector) < 2:
        return list(candidates)
    # One matrix product for every pair (the pool is at most max(5 x limit, 50) items), instead of stacking
    # the kept vectors again for each candidate.
    matrix = np.stack([candidates[i].vector for i in with_vector])
    near = (matrix @ matrix.T) >= threshold
    dropped = np.zeros(len(with_vector), dtype=bool)
    for row in range(len(with_vector)):
        if dropped[row]:
            continue
        later = near[row, row + 1 :]
        dropped[row + 1 :] |= later
    gone = {with_vector[row] for row in np.flatnonzero(dropped)}
    return [c for i, c in enumerate(candidates) if i not in gone]

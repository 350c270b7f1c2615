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
    kept: list[Scored] = []
    kept_vectors: list[np.ndarray] = []
    for c in candidates:
        if c.vector is not None and kept_vectors:
            if float(np.max(np.stack(kept_vectors) @ c.vector)) >= threshold:
                continue
        kept.append(c)
        if c.vector is not None:
            kept_vectors.append(c.vector)
    return kept

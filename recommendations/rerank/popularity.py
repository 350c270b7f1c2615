"""A penalty against popularity bias: the most popular candidates lose a little, so that the long tail
gets a chance when it is about as relevant."""

from __future__ import annotations

import numpy as np

from recommendations.rerank.candidates import Candidates


def popularity_penalize(candidates: Candidates, *, penalty: float) -> Candidates:
    """Subtracts `penalty * log1p(count) / log1p(max count among the candidates)`: the full penalty for the
    most interacted-with candidate, nothing for one without interactions."""
    top = int(candidates.interactions.max()) if len(candidates) else 0
    if penalty == 0 or top == 0:
        return candidates
    return candidates.with_score(
        candidates.score - penalty * np.log1p(candidates.interactions) / np.log1p(top)
    )

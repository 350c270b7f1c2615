"""A penalty against popularity bias: the most popular candidates lose a little, so that the long tail
gets a chance when it is about as relevant."""

from __future__ import annotations

import math

from recommendations.rerank.candidates import Scored, evolve


def popularity_penalize(candidates: list[Scored], *, penalty: float) -> list[Scored]:
    """Subtracts `penalty * log1p(count) / log1p(max count among the candidates)`: the full penalty for the
    most interacted-with candidate, nothing for one without interactions."""
    top = max((c.interaction_count for c in candidates), default=0)
    if penalty == 0 or top == 0:
        return list(candidates)
    scale = math.log1p(top)
    return [
        evolve(c, score=c.score - penalty * math.log1p(c.interaction_count) / scale)
        if c.interaction_count
        else c
        for c in candidates
    ]

import math

import pytest

from recommendations.rerank.popularity import popularity_penalize
from tests.recommendations.rerank.conftest import cand, cands


def test_most_popular_gets_full_penalty_and_unseen_item_none():
    items = [
        cand(1, 0.5, interaction_count=100),
        cand(2, 0.5, interaction_count=0),
        cand(3, 0.5, interaction_count=9),
    ]
    out = popularity_penalize(cands(*items), penalty=0.1)
    assert out[0].score == pytest.approx(0.4)
    assert out[1].score == 0.5
    assert out[2].score == pytest.approx(0.5 - 0.1 * math.log1p(9) / math.log1p(100))


def test_long_tail_item_overtakes_a_slightly_better_blockbuster():
    blockbuster = cand(1, 0.52, interaction_count=10_000)
    niche = cand(2, 0.50, interaction_count=3)
    out = popularity_penalize(cands(blockbuster, niche), penalty=0.05)
    assert max(out, key=lambda c: c.score).pk == 2


def test_zero_penalty_changes_nothing():
    items = [cand(1, 0.5, interaction_count=100)]
    assert popularity_penalize(cands(*items), penalty=0.0)[0].score == 0.5

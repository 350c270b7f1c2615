from datetime import timedelta

import pytest

from recommendations.rerank.freshness import freshness_boost
from tests.recommendations.rerank.conftest import NOW, cand, cands


def test_new_item_gets_full_weight_and_one_half_life_old_gets_half():
    new = cand(1, 0.5, published_at=NOW)
    old = cand(2, 0.5, published_at=NOW - timedelta(days=10))
    out = freshness_boost(cands(new, old), now=NOW, weight=0.2, half_life_days=10)
    assert out[0].score == pytest.approx(0.7)
    assert out[1].score == pytest.approx(0.6)


def test_item_of_unknown_age_and_zero_weight_are_left_alone():
    unknown = cand(1, 0.5)
    assert freshness_boost(cands(unknown), now=NOW, weight=0.2, half_life_days=10)[0].score == 0.5
    dated = cand(2, 0.5, published_at=NOW)
    assert freshness_boost(cands(dated), now=NOW, weight=0.0, half_life_days=10)[0].score == 0.5


def test_newer_item_overtakes_slightly_more_relevant_older_one():
    older = cand(1, 0.62, published_at=NOW - timedelta(days=300))
    newer = cand(2, 0.60, published_at=NOW - timedelta(days=1))
    out = freshness_boost(cands(older, newer), now=NOW, weight=0.05, half_life_days=30)
    assert max(out, key=lambda c: c.score).pk == 2


def test_input_is_not_mutated():
    original = cand(1, 0.5, published_at=NOW)
    freshness_boost(cands(original), now=NOW, weight=0.2, half_life_days=10)
    assert original.score == 0.5

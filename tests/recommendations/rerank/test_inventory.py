import pytest

from recommendations.rerank.inventory import inventory_apply, score_scale
from tests.recommendations.rerank.conftest import cand, cands


def test_unavailable_items_are_dropped_when_in_stock_only():
    items = [cand(1, available=False), cand(2)]
    out = inventory_apply(cands(*items), in_stock_only=True, low_stock_threshold=3, low_stock_factor=0.5)
    assert [c.pk for c in out] == [2]


def test_unavailable_items_stay_when_the_profile_allows_them():
    items = [cand(1, available=False), cand(2)]
    out = inventory_apply(cands(*items), in_stock_only=False, low_stock_threshold=3, low_stock_factor=0.5)
    assert [c.pk for c in out] == [1, 2]


def test_low_stock_is_demoted_and_plenty_or_unknown_stock_is_not():
    items = [cand(1, 0.8, stock=2), cand(2, 0.8, stock=50), cand(3, 0.8, stock=None)]
    out = inventory_apply(cands(*items), in_stock_only=True, low_stock_threshold=3, low_stock_factor=0.5)
    assert [c.score for c in out] == pytest.approx([0.4, 0.8, 0.8])


def test_score_scale_makes_negative_scores_worse_too():
    assert score_scale(-0.2, 0.5) < -0.2
    assert score_scale(0.2, 0.5) < 0.2
    assert score_scale(-0.2, 2.0) > -0.2

"""Every live metric against small cases computed by hand (coverage and diversity:
tests/training/test_metrics.py)."""

from __future__ import annotations

import math

import pytest

from analytics import metrics


def test_ctr_is_clicks_per_item_shown():
    assert metrics.ctr(clicks=3, impressions=40) == pytest.approx(0.075)
    assert metrics.ctr(clicks=0, impressions=0) == 0.0


def test_conversion_rate_is_conversions_per_recommendation_click():
    assert metrics.conversion_rate(conversions=1, clicks=4) == 0.25
    assert metrics.conversion_rate(conversions=0, clicks=0) == 0.0


def test_gini_is_zero_for_equal_impressions_and_high_when_one_item_takes_all():
    assert metrics.gini([5, 5, 5, 5]) == pytest.approx(0.0)
    # one of four items has everything: G = (n-1)/n = 0.75
    assert metrics.gini([0, 0, 0, 8]) == pytest.approx(0.75)
    # [1,2,3,4]: sum i*x = 1+4+9+16 = 30, G = 2*30/(4*10) - 5/4 = 0.25
    assert metrics.gini([4, 1, 3, 2]) == pytest.approx(0.25)
    assert metrics.gini([]) == 0.0
    assert metrics.gini([0, 0]) == 0.0


def test_novelty_is_mean_self_information_of_recommended_items():
    popularity = {"a": 50, "b": 25}
    # p(a) = 0.5 -> 1 bit, p(b) = 0.25 -> 2 bits, unseen c counts as 1 user: p = 0.01 -> log2(100) bits
    value = metrics.novelty(recommended=["a", "b", "c"], popularity=popularity, n_users=100)
    assert value == pytest.approx((1 + 2 + math.log2(100)) / 3)
    assert metrics.novelty(recommended=[], popularity=popularity, n_users=100) is None

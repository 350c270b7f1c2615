"""Every metric against small cases computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from analytics import metrics


def test_ctr_is_clicks_per_item_shown():
    assert metrics.ctr(clicks=3, impressions=40) == pytest.approx(0.075)
    assert metrics.ctr(clicks=0, impressions=0) == 0.0


def test_conversion_rate_is_conversions_per_recommendation_click():
    assert metrics.conversion_rate(conversions=1, clicks=4) == 0.25
    assert metrics.conversion_rate(conversions=0, clicks=0) == 0.0


def test_coverage_counts_each_item_once_over_catalog_size():
    assert metrics.coverage(recommended=["a", "b", "a", "c"], catalog_size=10) == pytest.approx(0.3)
    assert metrics.coverage(recommended=[], catalog_size=0) == 0.0


def test_intra_list_diversity_is_mean_pairwise_cosine_distance():
    # a=(1,0), b=(0,1), c=(1,1)/sqrt2: distances ab=1, ac=1-1/sqrt2, bc=1-1/sqrt2
    vectors = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    expected = (1 + 2 * (1 - 1 / math.sqrt(2))) / 3
    assert metrics.intra_list_diversity(vectors) == pytest.approx(expected)


def test_intra_list_diversity_of_identical_items_is_zero_and_of_one_item_undefined():
    assert metrics.intra_list_diversity(np.array([[2.0, 0.0], [1.0, 0.0]])) == pytest.approx(0.0)
    assert metrics.intra_list_diversity(np.array([[1.0, 0.0]])) is None


def test_opposite_vectors_have_distance_two():
    assert metrics.intra_list_diversity(np.array([[1.0, 0.0], [-1.0, 0.0]])) == pytest.approx(2.0)


def test_mean_diversity_skips_lists_without_pairs():
    lists = [np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([[1.0, 0.0]])]
    assert metrics.mean_diversity(lists) == pytest.approx(1.0)
    assert metrics.mean_diversity([np.array([[1.0, 0.0]])]) is None


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


def test_recall_hit_rate_and_ndcg_at_k_for_one_relevant_item():
    ranked = ["x", "y", "t", "z"]
    assert metrics.recall_at_k(ranked, {"t"}, 2) == 0.0
    assert metrics.recall_at_k(ranked, {"t"}, 3) == 1.0
    assert metrics.hit_rate_at_k(ranked, {"t"}, 2) == 0.0
    assert metrics.hit_rate_at_k(ranked, {"t"}, 3) == 1.0
    # hit at rank 3: DCG = 1/log2(4) = 0.5, ideal = 1
    assert metrics.ndcg_at_k(ranked, {"t"}, 3) == pytest.approx(0.5)


def test_recall_and_ndcg_with_several_relevant_items():
    ranked = ["a", "x", "b", "y"]
    relevant = {"a", "b", "c"}
    assert metrics.recall_at_k(ranked, relevant, 4) == pytest.approx(2 / 3)
    dcg = 1 / math.log2(2) + 1 / math.log2(4)
    ideal = 1 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)
    assert metrics.ndcg_at_k(ranked, relevant, 4) == pytest.approx(dcg / ideal)
    # k=2: ideal over min(3, 2) = 2 positions
    assert metrics.ndcg_at_k(ranked, relevant, 2) == pytest.approx(1 / (1 + 1 / math.log2(3)))


def test_reciprocal_rank_of_first_relevant_item():
    assert metrics.reciprocal_rank(["x", "y", "t"], {"t", "y"}) == pytest.approx(0.5)
    assert metrics.reciprocal_rank(["x"], {"t"}) == 0.0


def test_coverage_and_mean_popularity_at_k_read_only_the_top_k():
    lists = [["a", "b", "c"], ["a", "d", "e"]]
    assert metrics.coverage_at_k(lists, 2, catalog_size=10) == pytest.approx(0.3)  # a, b, d
    popularity = {"a": 10, "b": 4, "d": 0}
    assert metrics.mean_popularity_at_k(lists, 2, popularity) == pytest.approx((10 + 4 + 10 + 0) / 4)

"""Every ranking metric (offline, and the list metrics the live reports share) against small cases
computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from training import metrics


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

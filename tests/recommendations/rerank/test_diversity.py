from recommendations.rerank.diversity import caps_select, mmr_select
from tests.recommendations.rerank.conftest import axis, cand, cands


def _pool():
    # three very relevant items of one kind, then slightly less relevant items of other kinds
    return [
        cand(1, 0.90, vector=axis(0)),
        cand(2, 0.89, vector=axis(0)),
        cand(3, 0.88, vector=axis(0)),
        cand(4, 0.80, vector=axis(1)),
        cand(5, 0.79, vector=axis(2)),
    ]


def test_mmr_with_lambda_one_keeps_relevance_order():
    assert [c.pk for c in mmr_select(cands(*_pool()), k=3, lam=1.0)] == [1, 2, 3]


def test_mmr_with_lower_lambda_brings_other_kinds_up():
    assert [c.pk for c in mmr_select(cands(*_pool()), k=3, lam=0.5)] == [1, 4, 5]


def test_mmr_returns_at_most_k_and_handles_missing_vectors():
    pool = [cand(1, 0.9), cand(2, 0.8, vector=axis(0)), cand(3, 0.7)]
    assert [c.pk for c in mmr_select(cands(*pool), k=2, lam=0.5)] == [1, 2]


def test_caps_limit_items_per_category_and_per_brand():
    pool = [
        cand(1, 0.9, category_path=("A",), brand="x"),
        cand(2, 0.8, category_path=("A",), brand="y"),
        cand(3, 0.7, category_path=("B",), brand="x"),
        cand(4, 0.6, category_path=("C",), brand="z"),
        cand(5, 0.5, category_path=("D",), brand=""),
    ]
    out = caps_select(cands(*pool), k=4, max_per_category=1, max_per_brand=1)
    assert [c.pk for c in out] == [1, 4, 5]


def test_caps_of_zero_mean_no_cap():
    pool = [cand(i, 1 - i / 10, category_path=("A",), brand="x") for i in range(5)]
    assert len(caps_select(cands(*pool), k=4, max_per_category=0, max_per_brand=0)) == 4

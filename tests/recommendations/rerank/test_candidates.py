"""`candidates.member`, the membership test of `Candidates.without` and the exploration step: what
np.isin answers, for the pks re-ranking compares (candidates against history, answers, pinned items)."""

import numpy as np

from recommendations.rerank.candidates import member


def test_member_answers_what_np_isin_answers():
    rng = np.random.default_rng(3)
    for _ in range(300):
        values = rng.integers(1, 400, rng.integers(0, 60)).astype(np.int64)
        pks = rng.integers(1, 400, rng.integers(0, 30)).astype(np.int64)  # repeats, beyond the values' range
        np.testing.assert_array_equal(member(values, pks), np.isin(values, pks))


def test_member_at_the_edges():
    values = np.array([5, 1, 9, 10], np.int64)
    assert member(values, np.array([], np.int64)).tolist() == [False] * 4
    assert member(np.array([], np.int64), values).tolist() == []
    assert member(values, np.array([10], np.int64)).tolist() == [False, False, False, True]  # the largest
    assert member(values, np.array([0, 11], np.int64)).tolist() == [False] * 4  # below and past all

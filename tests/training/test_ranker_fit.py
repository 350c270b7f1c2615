"""The ranker's fit as training runs it: one early-stopped LightGBM fit on most users' groups (the rest
stop the boosting), on every positive and a sample of each group's negatives."""

from __future__ import annotations

import numpy as np
import pytest

from recommendations.ranker import model as ranker_model
from recommendations.ranker.features import feature_names
from recommendations.ranker.model import ranker_load, ranker_save
from tests.recommendations.two_tower_factories import planted_shop
from training import evaluation
from training.ranker.training import TrainingRows, ranker_train_holdout, rows_sample, training_rows_build


def _interaction(groups: np.ndarray, seed: int = 0):
    """Relevant: a high `a` score in the user's price band, a high `b` score outside it (each column alone
    ranks at chance level)."""
    rng = np.random.default_rng(seed)
    columns = feature_names(("a", "b"))
    n = int(groups.sum())
    x = np.full((n, len(columns)), np.nan, dtype=np.float32)
    a, b, band = rng.random(n), rng.random(n), rng.integers(0, 2, n).astype(float)
    x[:, columns.index("a_score")] = a
    x[:, columns.index("b_score")] = b
    x[:, columns.index("price_in_band")] = band
    y = (((a > 0.8) & (band == 1)) | ((b > 0.8) & (band == 0))).astype(np.float32)
    return x, y


def _ndcg(scores: np.ndarray, labels: np.ndarray, groups: np.ndarray) -> float:
    out, start = [], 0
    discount = 1.0 / np.log2(np.arange(2, 12))
    for size in groups:
        s, y = scores[start : start + size], labels[start : start + size]
        top = np.argsort(-s, kind="stable")[:10]
        ideal = discount[: min(int(y.sum()), 10)].sum()
        out.append(float(y[top] @ discount[: len(top)]) / ideal if ideal else 0.0)
        start += size
    return float(np.mean(out))


def test_the_early_stopped_fit_learns_the_interaction_and_keeps_its_rounds(settings, tmp_path):
    settings.RECSYS_RANKER_DIR = tmp_path / "ranker"
    groups = np.full(300, 60)
    x, y = _interaction(groups)
    ranker = ranker_train_holdout(x, y, groups, sources=("a", "b"), seed=0)
    tx, ty = _interaction(np.full(50, 60), seed=1)  # other users
    assert _ndcg(ranker.predict(tx), ty, np.full(50, 60)) > 0.9
    info = ranker.info
    assert info["holdout_groups"] == 60 and info["groups"] == 300
    # separable: LightGBM ran out of splits before the floor, and every tree it made is kept
    assert ranker.booster.num_trees() == info["rounds"]
    loaded = ranker_load(ranker_save(ranker, name="holdout"))
    np.testing.assert_allclose(loaded.predict(tx), ranker.predict(tx))


def test_noisy_labels_keep_at_least_the_floor_of_rounds_and_only_the_rounds_chosen():
    groups = np.full(300, 60)
    x, y = _interaction(groups, seed=4)
    flip = np.random.default_rng(5).random(len(y)) < 0.1
    y[flip] = 1.0 - y[flip]
    # small leaves: trees that can always split, so only the stopping rule ends the boosting
    params = {"min_data_in_leaf": 5, "lambda_l2": 0.0}
    ranker = ranker_train_holdout(x, y, groups, sources=("a", "b"), seed=0, params=params)
    assert ranker.info["rounds"] >= ranker_model.MIN_ROUNDS
    # the model served stops at the rounds chosen, not at the last round run past the best
    assert ranker.booster.num_trees() == ranker.info["rounds"]


def test_the_fit_is_the_same_on_one_thread_and_on_two():
    groups = np.full(120, 40)
    x, y = _interaction(groups, seed=2)
    one = ranker_train_holdout(x, y, groups, sources=("a", "b"), seed=0, params={"num_threads": 1})
    two = ranker_train_holdout(x, y, groups, sources=("a", "b"), seed=0, params={"num_threads": 2})
    assert one.info["rounds"] == two.info["rounds"]
    np.testing.assert_array_equal(one.predict(x), two.predict(x))


def test_rows_sample_keeps_every_positive_and_at_most_n_negatives_per_group():
    rng = np.random.default_rng(3)
    groups = np.array([5, 30, 12, 40])
    labels = (rng.random(int(groups.sum())) < 0.2).astype(np.float32)
    labels[np.cumsum(groups) - 1] = 1.0  # every group has a positive
    features = np.arange(len(labels), dtype=np.float32)[:, None]  # a row's own position
    rows = TrainingRows(features, labels, groups, users=["a", "b", "c", "d"])

    sampled = rows_sample(rows, negatives=8, seed=0)

    starts = np.r_[0, np.cumsum(groups)[:-1]]
    kept_starts = np.r_[0, np.cumsum(sampled.groups)[:-1]]
    for g, (start, size) in enumerate(zip(starts, groups, strict=True)):
        y = labels[start : start + size]
        kept = sampled.features[kept_starts[g] : kept_starts[g] + sampled.groups[g], 0].astype(int)
        assert np.all((kept >= start) & (kept < start + size))  # rows stay in their group, in order
        assert np.all(np.diff(kept) > 0)
        assert set(np.flatnonzero(y > 0) + start) <= set(kept)
        assert (labels[kept] <= 0).sum() == min(8, int((y <= 0).sum()))
    assert sampled.users == rows.users
    assert rows_sample(rows, negatives=None, seed=0) is rows


@pytest.mark.django_db
@pytest.mark.parametrize("protocol", ["leave-one-out", "temporal"])
def test_rows_built_with_sampled_negatives_are_the_whole_rows_sampled(protocol):
    """Training computes the features of the rows it keeps only: the same rows, labels and features as
    sampling the whole groups afterwards."""
    planted_shop()
    data = evaluation.events_load()
    vectors = evaluation.item_vectors_load(data)
    everything = np.arange(len(data.ts))
    whole = training_rows_build(data, everything, vectors, protocol=protocol, horizon_days=30)
    sampled = training_rows_build(data, everything, vectors, protocol=protocol, horizon_days=30, negatives=5)
    expected = rows_sample(whole, negatives=5, seed=0)
    assert len(whole.groups) > 0 and len(sampled.labels) < len(whole.labels)
    assert sampled.users == whole.users
    np.testing.assert_array_equal(sampled.groups, expected.groups)
    np.testing.assert_array_equal(sampled.labels, expected.labels)
    # the similarity columns are float32 products of another shape: equal to the last bits
    np.testing.assert_allclose(sampled.features, expected.features, rtol=1e-5, atol=1e-6, equal_nan=True)

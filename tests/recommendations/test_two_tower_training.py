"""Training on a small generated shop with a planted pattern (tests/recommendations/two_tower_factories.py):
the model learns it and beats content-only on the held-out evaluation; new items get vectors from content."""

from __future__ import annotations

import numpy as np
import pytest

from recommendations.two_tower.features import item_features_load
from recommendations.two_tower.training import TrainConfig, model_train
from tests.recommendations.two_tower_factories import GROUPS, TINY, planted_shop
from training import evaluation
from training.two_tower.evaluation import two_tower_factory

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop():
    return planted_shop(seed=0)


def test_training_learns_the_planted_pattern_and_beats_content_only(shop):
    data = evaluation.events_load()
    result = evaluation.evaluation_run(
        protocol="leave-one-out",
        methods=["content", "user_vector", "two_tower"],
        extra_scorers={"two_tower": two_tower_factory(seed=0, **TINY)},
        progress=False,
        data=data,
    )
    metrics = result.metrics
    assert metrics["two_tower"]["ndcg@10"] > 0.6
    assert (
        metrics["two_tower"]["ndcg@10"]
        > max(metrics["content"]["ndcg@10"], metrics["user_vector"]["ndcg@10"]) + 0.4
    )
    # the planted answer first: a user of group g, whose history ends with A_g, gets C_g on top
    pk_of = {int(i): int(pk) for i, pk in enumerate(data.item_pks)}
    firsts = [pk_of[result.rankings["two_tower"][f"user-{g}-0"][0]] for g in range(GROUPS)]
    assert sum(first == shop.c[g].pk for g, first in enumerate(firsts)) >= GROUPS - 2


def test_same_seed_trains_the_same_model(shop):
    data = evaluation.events_load()
    rows = np.arange(len(data.ts))
    config = TrainConfig(**{**TINY, "max_epochs": 3}, seed=7)
    features = item_features_load(
        item_pks=data.item_pks, cat_buckets=config.cat_buckets, brand_buckets=config.brand_buckets
    )
    first = model_train(stream=data, train_rows=rows, config=config, progress=False).item_vectors(features)
    second = model_train(stream=data, train_rows=rows, config=config, progress=False).item_vectors(features)
    np.testing.assert_array_equal(first, second)


def test_item_without_interactions_gets_a_vector_from_its_content_alone(shop):
    data = evaluation.events_load()
    config = TrainConfig(**TINY, seed=0)
    trained = model_train(stream=data, train_rows=np.arange(len(data.ts)), config=config, progress=False)
    features = item_features_load(
        item_pks=data.item_pks, cat_buckets=config.cat_buckets, brand_buckets=config.brand_buckets
    )
    known = trained.item_vectors(features)
    # a "new" item: c_3's content under a pk the model never saw (no id embedding)
    c3 = int(np.flatnonzero(data.item_pks == shop.c[3].pk)[0])
    new = features.take(np.array([c3]))
    new.pks = np.array([10**9])
    vector = trained.item_vectors(new)[0]
    assert 10**9 not in trained.id_by_pk
    assert np.isclose(np.linalg.norm(vector), 1.0, atol=1e-5)
    # its nearest trained item is the one whose content it shares
    assert int(np.argmax(known @ vector)) == c3


def test_temporal_protocol_trains_on_events_before_the_cut_only(shop):
    data = evaluation.events_load()
    seen_rows = []

    def keep(trained):
        seen_rows.append(trained.examples)

    result = evaluation.evaluation_run(
        protocol="temporal",
        test_days=30,
        methods=["content", "two_tower"],
        extra_scorers={"two_tower": two_tower_factory(seed=0, on_trained=keep, **TINY)},
        progress=False,
        data=data,
    )
    assert result.split.users and "ndcg@10" in result.metrics["two_tower"]
    # every training example comes from events before the cut: fewer than from all events
    everything = model_train(
        stream=data,
        train_rows=np.arange(len(data.ts)),
        config=TrainConfig(**{**TINY, "max_epochs": 1}),
        progress=False,
    )
    assert 0 < seen_rows[0] < everything.examples

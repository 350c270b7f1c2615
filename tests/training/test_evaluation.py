"""Offline evaluation: both protocols, the baselines, no leakage, the served path as a method (saved runs and
the `evaluate` command: tests/analytics/test_evaluation_runs.py, test_evaluate_command.py)."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from tests.factories import T0, EventFactory, ItemFactory, leading
from training import evaluation

pytestmark = pytest.mark.django_db

DAY = timedelta(days=1)


def _buy(user, item, when, kind="purchase"):
    return EventFactory(user_id=user, session_id=f"{user}-s", item=item, event_type=kind, timestamp=when)


@pytest.fixture
def shop():
    """Items a..e. Evaluated users u1..u3 each bought a, then b, then c (c is their test item, b their
    validation item). Users w1..w4 bought a and c only (two distinct items: training only). So from the
    training data: c co-occurs with a 4 times, d is the most popular item (bought by x1..x5)."""
    items = {
        name: ItemFactory(category_path=[], published_at=None, external_id=name, embedding=leading(*vec))
        for name, vec in {
            "a": (1, 0, 0),
            "b": (0, 1, 0),
            "c": (0.9, 0.1, 0),
            "d": (0, 0, 1),
            "e": (0, 0.7, 0.7),
        }.items()
    }
    for n in range(1, 4):
        _buy(f"u{n}", items["a"], T0 + n * DAY)
        _buy(f"u{n}", items["b"], T0 + (n + 1) * DAY)
        _buy(f"u{n}", items["c"], T0 + (n + 2) * DAY)
    for n in range(1, 5):
        _buy(f"w{n}", items["a"], T0)
        _buy(f"w{n}", items["c"], T0 + DAY)
    for n in range(1, 6):
        _buy(f"x{n}", items["d"], T0)
    return items


def _idx(data, item):
    return int(np.flatnonzero(data.item_pks == item.pk)[0])


def test_leave_one_out_holds_out_last_item_for_test_and_second_to_last_for_validation(shop):
    data = evaluation.events_load()
    split = evaluation.split_build(data, protocol="leave-one-out")
    assert split.users == ["u1", "u2", "u3"]
    assert all(split.test[u] == {_idx(data, shop["c"])} for u in split.users)
    assert all(split.history[u] == [_idx(data, shop["a"])] for u in split.users)
    assert split.held_out == 6  # b and c of three users
    train_items = {(str(data.user_ids[i]), int(data.item_idx[i])) for i in split.train}
    assert ("u1", _idx(data, shop["b"])) not in train_items
    assert ("u1", _idx(data, shop["c"])) not in train_items


def test_leave_one_out_training_ends_before_the_validation_item(shop):
    # u1 buys a again after its test item: that later event must not be training either
    _buy("u1", shop["a"], T0 + 10 * DAY)
    _buy("u1", shop["e"], T0 + 1.5 * DAY)  # between a and b: training
    data = evaluation.events_load()
    split = evaluation.split_build(data, protocol="leave-one-out")
    assert split.history["u1"] == [_idx(data, shop["a"]), _idx(data, shop["e"])]
    late = [i for i in split.train if data.user_ids[i] == "u1" and data.ts[i] >= (T0 + 10 * DAY).timestamp()]
    assert late == []


def test_temporal_cuts_globally_and_tests_only_new_items_of_the_next_days(shop):
    cut_time = T0 + 20 * DAY
    _buy("u1", shop["d"], cut_time + DAY)  # new for u1: test
    _buy("u1", shop["a"], cut_time + DAY)  # already in u1's history: not a test item
    _buy("nobody-before", shop["e"], cut_time + DAY)  # no training history: not evaluated
    _buy("u2", shop["e"], cut_time + 2 * DAY)  # the last event: the cut is 7 days before it
    data = evaluation.events_load()
    split = evaluation.split_build(data, protocol="temporal", test_days=7)
    assert split.cut_ts == pytest.approx((cut_time + 2 * DAY - 7 * DAY).timestamp())
    assert split.users == ["u1", "u2"]
    assert split.test["u1"] == {_idx(data, shop["d"])}
    assert split.test["u2"] == {_idx(data, shop["e"])}
    assert all(data.ts[i] < split.cut_ts for i in split.train)


def test_test_events_do_not_leak_into_popularity_cooccurrence_or_user_vectors(shop):
    # make c (everyone's test item) hugely popular in the test period only
    cut_time = T0 + 30 * DAY
    for n in range(20):
        _buy(f"u{1 + n % 3}", shop["e"], cut_time + DAY + n * timedelta(minutes=1))
    data = evaluation.events_load()
    split = evaluation.split_build(data, protocol="temporal", test_days=7)
    stats = evaluation.training_stats_build(data, split)
    e = _idx(data, shop["e"])
    assert stats.popularity[e] == 0
    assert stats.cooccurrence[:, e].sum() == 0
    vectors = evaluation.item_vectors_load(data)
    user_vecs = evaluation.user_vectors_build(data, split, vectors)
    # u1's training: a, b, c -> its vector has no component along e's third axis
    assert user_vecs["u1"][2] == pytest.approx(0.0)

    loo = evaluation.split_build(data, protocol="leave-one-out")
    loo_stats = evaluation.training_stats_build(data, loo)
    # under leave-one-out, c is held out for u1..u3 but bought by w1..w4 in training: 4, not 7
    assert loo_stats.popularity[_idx(data, shop["c"])] == 4


def test_baselines_rank_the_whole_active_catalog_without_the_users_own_items(shop):
    result = evaluation.evaluation_run(protocol="leave-one-out", progress=False)
    data = evaluation.events_load()
    a, c, d = (_idx(data, shop[n]) for n in "acd")
    for method in evaluation.BASELINES:
        for user in ("u1", "u2", "u3"):
            ranked = result.rankings[method][user]
            assert a not in ranked  # in the user's history
            assert len(ranked) == 4  # every other active item, nothing sampled
    # popularity: d (5 buyers) first; co-occurrence from a: c (4 co-buyers); content from a: c (nearest)
    assert result.rankings["popularity"]["u1"][0] == d
    assert result.rankings["cooccurrence"]["u1"][0] == c
    assert result.rankings["content"]["u1"][0] == c
    m = result.metrics
    assert m["cooccurrence"]["hit_rate@10"] == 1.0
    assert m["cooccurrence"]["mrr"] == 1.0
    # training popularity: a 7, d 5, c 4 (b and e: 0, b being held out) -> without a: d, c, ... -> rank 2
    assert m["popularity"]["mrr"] == pytest.approx(0.5)
    assert m["popularity"]["ndcg@10"] == pytest.approx(1 / np.log2(3))
    assert m["popularity"]["recall@10"] == 1.0
    assert m["popularity"]["coverage@10"] == pytest.approx(4 / 5)


def test_inactive_items_are_never_recommended_and_not_counted_in_the_catalog(shop):
    shop["d"].is_active = False
    shop["d"].save()
    result = evaluation.evaluation_run(protocol="leave-one-out", progress=False)
    data = evaluation.events_load()
    assert all(_idx(data, shop["d"]) not in r for r in result.rankings["popularity"].values())
    assert result.summary["active_items"] == 4


def test_configured_recommender_is_evaluated_through_the_serving_code_path(shop):
    from recommendations.models import ItemPopularity, ServedList
    from training.served_recommender import served_scorer_factory

    ItemPopularity.objects.create(item=shop["e"], score=99.0, interaction_count=99)  # live, not training
    result = evaluation.evaluation_run(
        protocol="leave-one-out", extra_scorers={"served": served_scorer_factory}, progress=False
    )
    data = evaluation.events_load()
    a, c = _idx(data, shop["a"]), _idx(data, shop["c"])
    ranked = result.rankings["served"]["u1"]
    # u1's training vector is a's: the nearest other item is c; a itself (bought) is never served
    assert ranked[0] == c
    assert a not in ranked
    assert "served" in result.metrics
    assert result.metrics["served"]["hit_rate@10"] == 1.0
    # preview mode logs nothing, and the training-only popularity swap was rolled back
    assert not ServedList.objects.exists()
    assert list(ItemPopularity.objects.values_list("item_id", "score")) == [(shop["e"].pk, 99.0)]

"""The learned ranker: what it learns, that its training never reads the future, the registry (gate,
promotion, rejection, rollback), and the scenarios that serve through it."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import numpy as np
import pytest
from django.core.management import call_command
from django.utils import timezone

from interactions.models import Event
from recommendations import scenarios, sources
from recommendations.models import ModelVersion
from recommendations.ranker.features import feature_names
from recommendations.ranker.model import ranker_load, ranker_save, ranker_train
from recommendations.ranker.serving import active_ranker_clear, ranker_override
from tests.recommendations.two_tower_factories import GROUPS, planted_shop, planted_shop_with_early_purchases
from training import evaluation, metrics
from training.ranker import registry
from training.ranker.training import DEFAULT_SOURCES, covisitation_neighbours_for, training_rows_build

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def ranker_settings(settings, tmp_path):
    settings.RECSYS_RANKER_DIR = tmp_path / "ranker"
    settings.RECSYS_RANKER_HORIZON_DAYS = 60.0
    settings.RECSYS_RANKER_GATE_USERS = 1000
    active_ranker_clear()
    yield
    active_ranker_clear()


def _ndcg(order_scores: np.ndarray, labels: np.ndarray, groups: np.ndarray) -> float:
    out, start = [], 0
    for size in groups:
        s, y = order_scores[start : start + size], labels[start : start + size]
        ranked = list(np.argsort(-s, kind="stable"))
        out.append(metrics.ndcg_at_k(ranked, set(np.flatnonzero(y).tolist()), 10))
        start += size
    return float(np.mean(out))


def test_ranker_learns_an_interaction_no_single_source_captures():
    """Relevant: a high `a` score for items in the user's price band, a high `b` score for the others.
    Each source alone, and the band, rank at chance level; the ranker combines them."""
    rng = np.random.default_rng(0)
    names = ("a", "b")
    columns = feature_names(names)
    groups = np.full(300, 60)
    n = int(groups.sum())
    x = np.full((n, len(columns)), np.nan, dtype=np.float32)
    a, b, band = rng.random(n), rng.random(n), rng.integers(0, 2, n).astype(float)
    x[:, columns.index("a_score")] = a
    x[:, columns.index("b_score")] = b
    x[:, columns.index("price_in_band")] = band
    y = (((a > 0.8) & (band == 1)) | ((b > 0.8) & (band == 0))).astype(np.float32)

    ranker = ranker_train(x, y, groups, sources=names, seed=0)
    test = slice(0, 60 * 50)  # the first 50 groups, scored as a whole
    g = groups[:50]
    learned = _ndcg(ranker.predict(x[test]), y[test], g)
    singles = [_ndcg(col[test], y[test], g) for col in (a, b, band)]
    assert learned > 0.9
    assert max(singles) < 0.7


def test_ranker_round_trips_through_its_artifact(tmp_path):
    rng = np.random.default_rng(1)
    names = ("a",)
    x = rng.random((200, len(feature_names(names)))).astype(np.float32)
    y = (x[:, 0] > 0.7).astype(np.float32)
    ranker = ranker_train(x, y, np.full(10, 20), sources=names)
    loaded = ranker_load(ranker_save(ranker, name="t"))
    assert loaded.sources == names
    np.testing.assert_allclose(loaded.predict(x), ranker.predict(x))


def test_a_ranker_trained_on_other_feature_names_is_not_served(monkeypatch):
    """Same number of features, one renamed (its meaning changed): the stored model is refused."""
    from recommendations.ranker import features as ranker_features
    from recommendations.ranker.serving import ranker_compatible

    rng = np.random.default_rng(2)
    names = ("a",)
    x = rng.random((200, len(feature_names(names)))).astype(np.float32)
    ranker = ranker_train(x, (x[:, 0] > 0.7).astype(np.float32), np.full(10, 20), sources=names)
    assert ranker_compatible(ranker)
    current = ranker_features.feature_names
    monkeypatch.setattr(
        ranker_features,
        "feature_names",
        lambda sources: [n.replace("visit_shoppers_sum", "visit_covis_sum") for n in current(sources)],
    )
    assert not ranker_compatible(ranker)


@pytest.mark.parametrize("protocol", ["temporal", "leave-one-out"])
def test_training_rows_are_unchanged_by_test_period_events(protocol):
    shop = planted_shop()
    end = float(evaluation.events_load().ts.min()) + 120 * 86400.0  # the training period ends here

    def rows():
        data = evaluation.events_load()
        vectors = evaluation.item_vectors_load(data)
        train = np.flatnonzero(data.ts < end)
        return training_rows_build(data, train, vectors, protocol=protocol, horizon_days=30)

    before = rows()
    assert len(before.groups) > 0
    # the test period: everyone buys one noise item, twice (popularity, co-visitation, histories would move)
    later = timezone.now() + timedelta(days=1)
    users = sorted(set(Event.objects.values_list("user_id", flat=True)))
    Event.objects.bulk_create(
        Event(
            event_id=f"future-{u}-{k}",
            user_id=u,
            session_id=f"future-{u}",
            item=shop.noise[0],
            item_external_id=shop.noise[0].external_id,
            event_type="purchase",
            timestamp=later + timedelta(minutes=k),
        )
        for u in users
        for k in range(2)
    )
    after = rows()

    assert after.users == before.users
    np.testing.assert_array_equal(after.groups, before.groups)
    np.testing.assert_array_equal(after.labels, before.labels)
    np.testing.assert_allclose(after.features, before.features, equal_nan=True)


def test_leave_one_out_rows_label_every_item_after_the_history(shop):
    """LOO_POSITIVES "after_history": the validation item and the rest of the last basket are positives
    too, beside the held-out item ("last"), so more users give a group and groups have more positives."""
    data = evaluation.events_load()
    vectors = evaluation.item_vectors_load(data)
    everything = np.arange(len(data.ts))
    last = training_rows_build(data, everything, vectors, protocol="leave-one-out", loo_positives="last")
    after = training_rows_build(
        data, everything, vectors, protocol="leave-one-out", loo_positives="after_history"
    )
    assert set(last.users) <= set(after.users)
    assert (after.labels > 0).sum() > (last.labels > 0).sum()
    per_group_last = dict(
        zip(last.users, np.add.reduceat(last.labels, np.r_[0, np.cumsum(last.groups)[:-1]]), strict=True)
    )
    per_group_after = dict(
        zip(after.users, np.add.reduceat(after.labels, np.r_[0, np.cumsum(after.groups)[:-1]]), strict=True)
    )
    assert all(per_group_after[u] >= n for u, n in per_group_last.items())
    assert max(per_group_after.values()) >= 2


@pytest.fixture
def shop():
    return planted_shop_with_early_purchases()


def test_gate_promotes_a_ranker_that_clears_the_required_gain(shop, settings):
    settings.RECSYS_RANKER_MIN_GAIN = -1.0
    version = registry.ranker_train_and_gate()
    assert version.kind == ModelVersion.Kind.RANKER
    assert version.status == ModelVersion.Status.PROMOTED and version.is_active
    assert version.reference == "the single-retrieval path"
    assert ranker_load(version.artifact_path).sources == DEFAULT_SOURCES
    # the two-tower registry's active version is another kind: untouched
    assert not ModelVersion.objects.filter(kind=ModelVersion.Kind.TWO_TOWER).exists()


def test_gate_rejects_a_ranker_below_the_required_gain(shop, settings):
    settings.RECSYS_RANKER_MIN_GAIN = 1.0
    version = registry.ranker_train_and_gate()
    assert version.status == ModelVersion.Status.REJECTED and not version.is_active
    assert "does not beat" in version.reason


def test_rollback_goes_to_the_previous_ranker_then_to_none(shop, settings):
    settings.RECSYS_RANKER_MIN_GAIN = -1.0
    first = registry.ranker_train_and_gate()
    second = registry.ranker_train_and_gate()
    assert second.reference == f"active version v{first.pk}"
    assert registry.ranker_rollback().pk == first.pk
    second.refresh_from_db()
    assert second.status == ModelVersion.Status.ROLLED_BACK and not second.is_active
    out = StringIO()
    call_command("rollback_model", "--kind", "ranker", stdout=out)
    assert f"v{first.pk} -> none (single retrieval)" in out.getvalue()
    assert not ModelVersion.objects.filter(kind=ModelVersion.Kind.RANKER, is_active=True).exists()


def test_train_model_trains_the_towers_then_the_ranker(shop, settings, capsys, tmp_path):
    settings.RECSYS_TWO_TOWER_DIR = tmp_path / "tt"
    settings.RECSYS_TWO_TOWER_MAX_EPOCHS = 2
    settings.RECSYS_RANKER_MIN_GAIN = -1.0
    call_command("train_model", "--no-progress", "--max-epochs", "2")
    out = capsys.readouterr().out
    assert "ranker v" in out and out.index("ranker v") > out.index("v")
    assert ModelVersion.objects.filter(kind=ModelVersion.Kind.RANKER, is_active=True).exists()


@pytest.fixture
def served_with_ranker(shop):
    """A ranker trained on the shop, co-visitation read from the shop's events, the ranker active."""
    data = evaluation.events_load()
    vectors = evaluation.item_vectors_load(data)
    rows = training_rows_build(data, np.arange(len(data.ts)), vectors, protocol="leave-one-out")
    ranker = ranker_train(rows.features, rows.labels, rows.groups, sources=DEFAULT_SOURCES)
    sources.covisitation_in_memory(covisitation_neighbours_for(data, np.arange(len(data.ts))))
    with ranker_override(ranker, name="test"):
        yield shop
    sources.covisitation_in_memory(None)


def test_similar_items_combine_content_and_bought_together_with_the_anchor_named(served_with_ranker):
    shop = served_with_ranker
    g = 3
    answer = scenarios.recommendations_similar(
        item_pk=shop.a[g].pk, external_id=shop.a[g].external_id, params=scenarios.ListParams(limit=5)
    )
    first = answer.items[0]
    assert first["id"] == shop.c[g].external_id
    assert first["reason"] == {"type": "bought_together", "item_id": shop.a[g].external_id}


def test_user_recommendations_rank_the_planted_next_item_first(served_with_ranker):
    shop = served_with_ranker
    hits = 0
    for g in range(GROUPS):
        # a trainer-like user who has just bought A_g
        Event.objects.create(
            event_id=f"probe-{g}",
            user_id=f"probe-{g}",
            item=shop.a[g],
            item_external_id=shop.a[g].external_id,
            event_type="purchase",
            timestamp=timezone.now(),
        )
        answer = scenarios.recommendations_for_user(
            user_id=f"probe-{g}", params=scenarios.ListParams(limit=5)
        )
        hits += answer.items[0]["id"] == shop.c[g].external_id
        assert answer.items[0]["reason"]["type"] in {"bought_together", "similar_to", "because_you_bought"}
    assert hits >= GROUPS - 1


def test_user_recommendations_query_count_with_the_ranker(served_with_ranker, django_assert_max_num_queries):
    shop = served_with_ranker
    Event.objects.create(
        event_id="probe",
        user_id="probe",
        item=shop.a[0],
        item_external_id=shop.a[0].external_id,
        event_type="purchase",
        timestamp=timezone.now(),
    )
    scenarios.recommendations_for_user(user_id="probe", params=scenarios.ListParams(limit=10))  # warm caches
    # context, history vectors (the probe has no stored vector yet), the sources' reads in two round trips
    # (sources_prefetch: vectors, trending and the user-vector search; then the content searches),
    # ranker attributes, features, served-list log; the active two-tower version when its 2 s cache
    # expires on a loaded machine (7 without it): the baseline (12 before the reads were batched)
    with django_assert_max_num_queries(8):
        scenarios.recommendations_for_user(user_id="probe", params=scenarios.ListParams(limit=10))

"""The two-tower model on the request path: the user tower runs online on the recent items (a new event
changes the next answer), the active version's vectors serve with hard filters, and content vectors stay
the fallback for new users, items without model vectors, and when no version is active."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from catalog.embedding import current_model_name
from catalog.models import Item
from recommendations import scenarios
from recommendations.models import ModelItemVector, ServedList
from recommendations.two_tower import serving
from recommendations.two_tower.artifacts import artifact_load
from recommendations.two_tower.features import distinct_first, sequence_encode
from recommendations.two_tower.user_tower import user_vector_numpy
from tests.recommendations.two_tower_factories import TINY, buy_now, planted_shop, random_unit
from training.two_tower import registry

pytestmark = pytest.mark.django_db


@pytest.fixture
def promoted(settings, tmp_path):
    settings.RECSYS_TWO_TOWER = TINY
    settings.RECSYS_TWO_TOWER_DIR = tmp_path / "models"
    settings.RECSYS_TWO_TOWER_MIN_GAIN = 0.0
    shop = planted_shop(seed=0)
    version = registry.model_train_and_gate(seed=0)
    assert version.is_active
    serving.active_version_clear()
    return shop, version


def _for_user(user_id: str, **params) -> scenarios.Answer:
    return scenarios.recommendations_for_user(
        user_id=user_id, params=scenarios.ListParams(**{"limit": 5, **params})
    )


def _logged(answer: scenarios.Answer) -> ServedList:
    return ServedList.objects.get(recommendation_id=answer.recommendation_id)


def torch_user_vector(model, tokens: np.ndarray, seq) -> np.ndarray:
    """The torch user tower for one sequence (what the numpy tower must reproduce)."""
    with torch.no_grad():
        return model.users(
            torch.from_numpy(tokens)[None],
            torch.from_numpy(seq.types),
            torch.from_numpy(seq.ages),
            torch.from_numpy(seq.items >= 0),
        )[0].numpy()


def test_numpy_user_tower_matches_the_trained_torch_tower(promoted):
    _, version = promoted
    loaded = artifact_load(version.artifact_path)
    model = loaded.trained.model
    vectors = {
        pk: v for pk, v in ModelItemVector.objects.filter(version=version).values_list("item_id", "embedding")
    }
    pks = list(vectors)[:5]
    items, types, ts = distinct_first(
        pks, ["view", "purchase", "click", "view", "add_to_cart"], [0, 10, 3600, 7200, 90000]
    )
    seq = sequence_encode(items, types, ts, max_len=model.shape.max_len)
    tokens = np.zeros((model.shape.max_len, model.shape.dim), dtype=np.float32)
    for j, pk in enumerate(seq.items[0]):
        if pk >= 0:
            tokens[j] = vectors[int(pk)]
    np.testing.assert_allclose(
        user_vector_numpy(loaded.user_tower, tokens, seq), torch_user_vector(model, tokens, seq), atol=1e-5
    )


def test_user_answer_comes_from_the_active_model_and_a_new_event_changes_the_next_one(promoted):
    shop, version = promoted
    buy_now("shopper", shop.a[3], minutes_ago=60)
    first = _for_user("shopper")
    assert first.items[0]["pk"] == shop.c[3].pk  # the learned "after A_3 comes C_3"
    assert _logged(first).model_version == version.name

    buy_now("shopper", shop.a[5])  # the very next request sees it: no worker, no retraining
    second = _for_user("shopper")
    assert second.items[0]["pk"] == shop.c[5].pk
    assert [i["pk"] for i in first.items] != [i["pk"] for i in second.items]


def test_session_answer_uses_the_user_tower_on_the_session_items(promoted):
    shop, version = promoted
    answer = scenarios.recommendations_for_session(
        item_pks=[shop.a[7].pk], params=scenarios.ListParams(limit=5)
    )
    assert answer.items[0]["pk"] == shop.c[7].pk
    assert _logged(answer).model_version == version.name


def test_hard_filters_apply_to_the_model_candidates(promoted):
    shop, _ = promoted
    Item.objects.filter(pk=shop.c[3].pk).update(price=99)
    buy_now("shopper", shop.a[3])
    answer = _for_user("shopper", max_price=50)
    assert shop.c[3].pk not in [i["pk"] for i in answer.items]
    assert len(answer.items) == 5


def test_new_user_without_history_gets_the_non_model_fallback(promoted):
    answer = _for_user("nobody-yet")
    assert answer.scenario == "trending"
    assert _logged(answer).model_version == "popularity"


def test_history_without_model_vectors_falls_back_to_content_vectors(promoted):
    shop, version = promoted
    # an item created after the version was trained, not yet given a model vector
    new = Item.objects.create(
        external_id="brand-new",
        title="brand new",
        price=10,
        embedding=shop.c[2].embedding,
        embedding_model=current_model_name(),
        embedding_dirty=False,
    )
    buy_now("newcomer", new)
    answer = _for_user("newcomer")
    assert _logged(answer).model_version == current_model_name()
    assert answer.items  # served from content vectors


def test_new_item_gets_a_model_vector_from_its_content_and_is_served(promoted):
    shop, version = promoted
    twin = Item.objects.create(
        external_id="c-3-twin",
        title="twin",
        price=10,
        embedding=np.asarray(shop.c[3].embedding),
        embedding_model=current_model_name(),
        embedding_dirty=False,
    )
    assert registry.vectors_refresh_items(item_pks=[twin.pk]) == 1
    row = ModelItemVector.objects.get(version=version, item=twin)
    assert np.isclose(np.linalg.norm(row.embedding), 1.0, atol=1e-4)
    buy_now("shopper", shop.a[3])
    answer = _for_user("shopper", limit=10)
    assert twin.pk in [i["pk"] for i in answer.items]  # near C_3 by content, so found by the model too


def test_after_rollback_to_nothing_content_vectors_serve_again(promoted):
    shop, _ = promoted
    registry.model_rollback()
    buy_now("shopper", shop.a[3])
    answer = _for_user("shopper")
    assert _logged(answer).model_version == current_model_name()


def test_unrelated_random_content_is_not_what_the_model_serves(promoted):
    # control for the planted-pattern tests: content vectors alone do not find C_3 after A_3
    shop, _ = promoted
    registry.model_rollback()
    buy_now("shopper", shop.a[3])
    answer = _for_user("shopper")
    assert answer.items[0]["pk"] != shop.c[3].pk
    assert random_unit(np.random.default_rng(1)).shape == (np.asarray(shop.c[3].embedding).shape[0],)


@pytest.mark.parametrize("residual_pooled", [True, False])
def test_numpy_user_tower_matches_torch_in_both_residual_forms(residual_pooled):
    """Models trained before `residual_pooled` existed (newest item + correction) still serve the same."""
    from recommendations.two_tower.model import ModelShape, TwoTower
    from recommendations.two_tower.user_tower import UserTowerWeights

    torch.manual_seed(0)
    shape = ModelShape(
        content_dim=8,
        dim=6,
        hidden=0,
        n_ids=4,
        cat_buckets=4,
        brand_buckets=4,
        price_buckets=3,
        max_len=5,
        residual_pooled=residual_pooled,
    )
    model = TwoTower(shape).eval()
    with torch.no_grad():  # the output layer starts at zero; give it weights so both forms differ
        model.user_out.weight.normal_()
        model.user_out.bias.normal_()
    items, types, ts = distinct_first([3, 1, 2], ["view", "purchase", "click"], [0, 60, 7200])
    seq = sequence_encode(items, types, ts, max_len=5)
    tokens = np.random.default_rng(1).normal(size=(5, 6)).astype(np.float32)
    weights = UserTowerWeights.from_model(model)
    assert weights.residual_pooled is residual_pooled
    np.testing.assert_allclose(
        user_vector_numpy(weights, tokens, seq), torch_user_vector(model, tokens, seq), atol=1e-5
    )

"""Pre-computed item lists (recommendations/item_cache.py): the cached `similar` and one-item `session`
answers equal the live ones (ids, order, scores, reasons), and every change that must show in the next
answer does: a folded event (co-visitation, when a ranker orders the list), stock, a model promotion, a
promotion going live, a profile edit, a new vector of the item, a new item near it. The live path answers
whenever the list cannot, with Redis down too."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from django.core.cache import cache
from django.utils import timezone

from catalog.models import Item, Promotion
from recommendations import scenarios, sources, tasks
from recommendations.covisitation import covisitation_fold
from recommendations.item_cache import (
    item_lists_due,
    item_lists_nearby,
    item_lists_refresh,
    item_lists_sweep,
)
from recommendations.models import ItemCandidateList, ItemPopularity, RerankProfile, Scenario
from recommendations.ranker.model import ranker_train
from recommendations.ranker.serving import active_ranker_clear, ranker_override
from recommendations.selectors import profile_for_surface, serving_config_clear
from tests.factories import ItemFactory, topic
from tests.recommendations.two_tower_factories import GROUPS, planted_shop
from training import evaluation, metrics
from training.ranker.training import DEFAULT_SOURCES, covisitation_neighbours_for, training_rows_build

pytestmark = pytest.mark.django_db
SIMILAR = "/api/v1/recommendations/items/{}/similar"
SESSION = "/api/v1/recommendations/session"


@pytest.fixture(autouse=True)
def _no_queue(monkeypatch):
    """Requests that miss queue the item (tasks.item_lists_enqueue): recorded here, not published."""
    queued: list[list[int]] = []
    monkeypatch.setattr(tasks, "_publish", lambda task, args, countdown=None: queued.append(args[0]))
    yield queued
    cache.clear()


@pytest.fixture
def shop():
    """120 items on 12 topics (no ranker: one vector search)."""
    return [
        ItemFactory(external_id=f"it-{i}", embedding=topic(i % 12, jitter=0.4, seed=i)) for i in range(120)
    ]


@pytest.fixture
def ranked(settings, tmp_path):
    """The planted shop with a ranker trained on it (active), co-visitation read from its events."""
    settings.RECSYS_RANKER_DIR = tmp_path / "ranker"
    active_ranker_clear()
    planted = planted_shop()
    data = evaluation.events_load()
    vectors = evaluation.item_vectors_load(data)
    rows = training_rows_build(data, np.arange(len(data.ts)), vectors, protocol="leave-one-out")
    ranker = ranker_train(rows.features, rows.labels, rows.groups, sources=DEFAULT_SOURCES)
    sources.covisitation_in_memory(covisitation_neighbours_for(data, np.arange(len(data.ts))))
    with ranker_override(ranker, name="v1"):
        yield planted, ranker
    sources.covisitation_in_memory(None)
    active_ranker_clear()


def _similar(item: Item, **params) -> scenarios.Answer:
    return scenarios.recommendations_similar(
        item_pk=item.pk, external_id=item.external_id, params=scenarios.ListParams(**params)
    )


def _session(items: list[Item], **params) -> scenarios.Answer:
    return scenarios.recommendations_for_session(
        item_pks=[it.pk for it in items], session_id="s1", params=scenarios.ListParams(**params)
    )


def _live(serve, settings):
    settings.RECSYS_ITEM_CACHE = False
    try:
        answer = serve()
    finally:
        settings.RECSYS_ITEM_CACHE = True
    assert answer.cache in ("miss:off", "")
    return answer


def _same(cached: scenarios.Answer, live: scenarios.Answer) -> None:
    """Ids, order, reasons (with their anchor items) and scores."""
    assert [(i["id"], i["reason"]) for i in cached.items] == [(i["id"], i["reason"]) for i in live.items]
    np.testing.assert_allclose(
        [i["score"] for i in cached.items], [i["score"] for i in live.items], rtol=1e-6
    )
    assert cached.scenario == live.scenario


def test_cached_similar_and_session_equal_the_live_path(shop, settings):
    for item in shop[:12]:
        assert item_lists_refresh(item_pks=[item.pk]) == 2
        cached = _similar(item)
        assert cached.cache == "hit"
        _same(cached, _live(lambda item=item: _similar(item), settings))
        session = _session([item, item])  # one item, viewed twice: still a one-item session
        assert session.cache == "hit"
        _same(session, _live(lambda item=item: _session([item, item]), settings))


def test_ranked_cached_answers_equal_the_live_path_and_so_does_ndcg(ranked, settings):
    """With a ranker, the list is the union of the sources around the item, in the ranker's order, each
    candidate with its source reason. The planted next item of A_g is C_g."""
    planted, _ = ranked
    cached_ndcg, live_ndcg = [], []
    for g in range(GROUPS):
        anchor = planted.a[g]
        item_lists_refresh(item_pks=[anchor.pk])
        for serve in (lambda a=anchor: _similar(a), lambda a=anchor: _session([a])):
            cached = serve()
            assert cached.cache == "hit"
            live = _live(serve, settings)
            _same(cached, live)
            target = {planted.c[g].external_id}
            cached_ndcg.append(metrics.ndcg_at_k([i["id"] for i in cached.items], target, 10))
            live_ndcg.append(metrics.ndcg_at_k([i["id"] for i in live.items], target, 10))
    assert np.mean(cached_ndcg) == np.mean(live_ndcg) > 0.3
    assert ItemCandidateList.objects.filter(
        item=planted.a[0], scenario=Scenario.SIMILAR
    ).get().model_version == ("ranker:v1")


def test_a_longer_session_is_always_live(shop):
    item_lists_refresh(item_pks=[shop[0].pk, shop[1].pk])
    assert _session([shop[0], shop[1]]).cache == ""


def test_a_folded_event_on_the_item_makes_the_ranked_list_a_miss_until_recomputed(
    ranked, settings, _no_queue
):
    planted, _ = ranked
    anchor = planted.a[0]
    item_lists_refresh(item_pks=[anchor.pk])
    assert _similar(anchor).cache == "hit"
    from interactions.models import Event

    bought = [
        Event.objects.create(
            event_id=f"fresh-{it.external_id}",
            user_id="fresh",
            session_id="fresh-s",
            item=it,
            item_external_id=it.external_id,
            event_type="purchase",
            timestamp=timezone.now(),
        ).pk
        for it in (anchor, planted.noise[3])
    ]
    covisitation_fold(event_pks=bought)  # the item's co-visitation changed: the live answer may have
    missed = _similar(anchor)
    assert missed.cache == "miss:events"
    assert _session([anchor]).cache == "miss:events"
    assert [anchor.pk] in _no_queue  # the miss queued the item's lists
    item_lists_refresh(item_pks=[anchor.pk])
    again = _similar(anchor)
    assert again.cache == "hit"
    _same(again, _live(lambda: _similar(anchor), settings))


def test_without_a_ranker_events_do_not_touch_the_list(shop):
    """One vector search: the answer does not depend on co-visitation, so a fold does not make it a miss."""
    from interactions.models import Event

    item_lists_refresh(item_pks=[shop[0].pk])
    event = Event.objects.create(
        event_id="e1", user_id="u", session_id="s", item=shop[0], item_external_id="it-0",
        event_type="purchase", timestamp=timezone.now(),
    )  # fmt: skip
    covisitation_fold(event_pks=[event.pk])
    assert _similar(shop[0]).cache == "hit"


def test_an_item_out_of_stock_leaves_the_next_cached_answer(shop, settings):
    item_lists_refresh(item_pks=[shop[0].pk])
    first = _similar(shop[0])
    gone = first.items[0]["id"]
    Item.objects.filter(external_id=gone).update(in_stock=False)
    after = _similar(shop[0])
    assert after.cache == "hit"
    assert gone not in [i["id"] for i in after.items]
    assert len(after.items) == len(first.items)
    _same(after, _live(lambda: _similar(shop[0]), settings))  # one search: the other items keep their scores


def test_a_model_promotion_makes_every_item_list_a_miss_until_recomputed(ranked):
    planted, ranker = ranked
    item_lists_refresh(item_pks=[planted.a[1].pk, planted.a[2].pk])
    assert _similar(planted.a[1]).cache == "hit"
    with ranker_override(ranker, name="v2"):
        assert _similar(planted.a[1]).cache == "miss:key"
        assert _session([planted.a[2]]).cache == "miss:key"
        assert planted.a[1].pk in item_lists_due(profile=profile_for_surface(surface=""))
        item_lists_refresh(item_pks=[planted.a[1].pk])
        assert _similar(planted.a[1]).cache == "hit"
        assert _similar(planted.a[2]).cache == "miss:key"


def test_a_promotion_going_live_shows_in_the_next_cached_answer(shop):
    item_lists_refresh(item_pks=[shop[0].pk])
    before = _similar(shop[0])
    pinned = next(it for it in shop[1:] if it.external_id not in [i["id"] for i in before.items])
    Promotion.objects.create(
        name="launch", target_type="item", item=pinned, pinned_slot=1, starts_at=timezone.now()
    )
    after = _similar(shop[0])
    assert after.cache == "hit"
    assert after.items[0]["id"] == pinned.external_id


def test_a_profile_edit_shows_in_the_next_answer(shop, settings):
    item_lists_refresh(item_pks=[shop[0].pk])
    before = _similar(shop[0])
    profile, _ = RerankProfile.objects.get_or_create(surface="default")
    profile.diversity_mode, profile.mmr_lambda = "mmr", 0.2
    profile.save()
    serving_config_clear()
    edited = _similar(shop[0])
    assert edited.cache == "hit"  # re-ranking weights apply on the stored list
    assert [i["id"] for i in edited.items] != [i["id"] for i in before.items]
    _same(edited, _live(lambda: _similar(shop[0]), settings))
    profile.candidate_k = 50  # shapes the list itself
    profile.save()
    serving_config_clear()
    assert _similar(shop[0]).cache == "miss:key"


def test_a_new_vector_of_the_item_makes_its_lists_a_miss(shop, _no_queue):
    item_lists_refresh(item_pks=[shop[0].pk])
    Item.objects.filter(pk=shop[0].pk).update(embedding=topic(5), embedded_at=timezone.now())
    assert _similar(shop[0]).cache == "miss:vector"
    assert _session([shop[0]]).cache == "miss:vector"
    assert shop[0].pk in item_lists_due(profile=profile_for_surface(surface=""))
    assert item_lists_nearby(item_pks=[shop[0].pk], before=timezone.now()) == [shop[0].pk]


def test_a_new_item_enters_the_lists_of_the_items_near_it(shop, settings):
    """Another item's new vector cannot change this item's key: the nearby refresh finds the lists it
    enters; a list it cannot enter (its last score beats the new item's similarity) is left alone."""
    item_lists_refresh(item_pks=[shop[0].pk, shop[1].pk])
    computed = timezone.now()
    twin = ItemFactory(external_id="twin", embedding=topic(0, jitter=0.05, seed=999), embedded_at=computed)
    assert _similar(shop[0]).cache == "hit"
    assert "twin" not in [i["id"] for i in _similar(shop[0]).items]  # stale until recomputed
    due = item_lists_nearby(item_pks=[twin.pk], before=timezone.now())
    assert shop[0].pk in due
    item_lists_refresh(item_pks=due)
    after = _similar(shop[0])
    assert after.cache == "hit"
    assert after.items[0]["id"] == "twin"
    _same(after, _live(lambda: _similar(shop[0]), settings))
    # a full list whose last score beats the new item's similarity cannot take it: left alone
    row = ItemCandidateList.objects.get(item=shop[1], scenario=Scenario.SIMILAR)
    assert len(row.scores) == profile_for_surface(surface="").candidate_k
    ItemCandidateList.objects.filter(item=shop[1]).update(scores=[0.99] * len(row.scores))
    assert shop[1].pk not in item_lists_nearby(item_pks=[twin.pk], before=timezone.now())
    ItemCandidateList.objects.filter(item=shop[1]).update(scores=[0.0] * len(row.scores))
    assert shop[1].pk in item_lists_nearby(item_pks=[twin.pk], before=timezone.now())


def test_filters_that_leave_too_few_items_fall_back_to_the_live_path(shop, settings):
    cheap = shop[12:18]  # 6 items
    Item.objects.filter(pk__in=[it.pk for it in cheap]).update(price=5)
    item_lists_refresh(item_pks=[shop[0].pk])
    filtered = _similar(shop[0], max_price=6, limit=10)
    assert filtered.cache == "miss:filtered"
    _same(filtered, _live(lambda: _similar(shop[0], max_price=6, limit=10), settings))


def test_an_item_without_a_list_is_served_live_and_queued_once(shop, settings, _no_queue):
    answer = _similar(shop[3])
    assert answer.cache == "miss:none"
    _same(answer, _live(lambda: _similar(shop[3]), settings))
    _similar(shop[3])
    assert _no_queue == [[shop[3].pk]]  # coalesced: one refresh queued per item at a time
    tasks.item_lists_refresh_task([shop[3].pk])
    assert _similar(shop[3]).cache == "hit"


def test_a_list_older_than_the_bound_is_not_served(shop, settings):
    item_lists_refresh(item_pks=[shop[0].pk])
    ItemCandidateList.objects.filter(item=shop[0]).update(
        computed_at=timezone.now() - timedelta(seconds=settings.RECSYS_ITEM_CACHE_MAX_AGE_SECONDS + 5)
    )
    assert _similar(shop[0]).cache == "miss:stale"
    item_lists_sweep(budget_seconds=30)  # recomputes it (due by age) before dropping the too-old rows
    assert _similar(shop[0]).cache == "hit"


def test_the_sweep_computes_the_popular_items_lists(shop, settings):
    settings.RECSYS_ITEM_CACHE_PRECOMPUTE_TOP = 2
    for rank, item in enumerate(shop[:3]):
        ItemPopularity.objects.create(item=item, score=10.0 - rank)
    assert item_lists_due(profile=profile_for_surface(surface="")) == [shop[0].pk, shop[1].pk]
    assert item_lists_sweep(budget_seconds=30) == 4
    assert _similar(shop[1]).cache == "hit"
    assert _similar(shop[2]).cache == "miss:none"


def test_serving_needs_no_redis(shop, api, settings, monkeypatch):
    item_lists_refresh(item_pks=[shop[0].pk])
    expected = [(i["id"], i["reason"]["type"]) for i in _similar(shop[0]).items]
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": "redis://127.0.0.1:1/0"}}
    monkeypatch.setattr(
        tasks, "_publish", lambda *a, **k: pytest.fail("nothing may be queued with Redis down")
    )
    hit = api.get(SIMILAR.format("it-0"))
    assert hit.status_code == 200, hit.content
    assert hit["X-Recsys-Cache"] == "hit"
    assert [(i["id"], i["reason"]["type"]) for i in hit.json()["items"]] == expected
    miss = api.get(SIMILAR.format("it-5"))  # no list: live, and the queueing gives up quietly
    assert miss.status_code == 200, miss.content
    assert miss["X-Recsys-Cache"] == "miss:none"
    session = api.post(SESSION, {"item_ids": ["it-0"]}, format="json")
    assert session.status_code == 200, session.content
    assert session["X-Recsys-Cache"] == "hit"


def test_an_item_given_a_vector_queues_the_nearby_refresh(
    shop, django_capture_on_commit_callbacks, _no_queue
):
    from catalog.item_vectors import items_vectors_changed_send

    with django_capture_on_commit_callbacks(execute=True):
        items_vectors_changed_send(item_pks=[shop[7].pk])
    assert [shop[7].pk] in _no_queue


def test_an_experiment_arm_serves_its_own_profile_from_the_list_or_misses(shop, settings):
    """An arm's re-ranking profile applies on the stored list (its candidate settings are the default's);
    an arm that changes the models or the sources cannot use a list computed with the defaults."""
    from recommendations import experiments
    from recommendations.models import Experiment

    item_lists_refresh(item_pks=[shop[0].pk])
    variant = RerankProfile.objects.create(surface="exp-b", diversity_mode="mmr", mmr_lambda=0.2)
    experiment = Experiment.objects.create(name="pages", surfaces=["product"], starts_at=timezone.now())
    arm = experiments.ArmConfig(experiment_id=experiment.pk, experiment="pages", variant="B", profile=variant)
    with experiments.arm_override(arm):
        cached = _similar(shop[0])
        assert cached.cache == "hit"
        assert cached.profile == "exp-b"
        _same(cached, _live(lambda: _similar(shop[0]), settings))
    assert [i["id"] for i in cached.items] != [i["id"] for i in _similar(shop[0]).items]  # its own MMR
    other = experiments.ArmConfig(
        experiment_id=experiment.pk, experiment="pages", variant="C", disabled_sources=frozenset({"trending"})
    )
    with experiments.arm_override(other):
        assert _similar(shop[0]).cache == "miss:experiment"

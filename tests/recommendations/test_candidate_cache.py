"""Pre-computed candidates (recommendations/candidate_cache.py): the cached path answers what the live
path answers, and every change that must show in the next answer (a new event, stock, a model promotion, a
promotion going live, a profile edit) does; the live path answers whenever the list cannot."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone

from catalog.models import Item, Promotion
from interactions.models import Event, UserProfile
from interactions.tasks import user_vectors_apply_task
from recommendations import scenarios, sources
from recommendations.candidate_cache import (
    candidate_lists_due,
    candidate_lists_refresh,
    candidate_lists_sweep,
)
from recommendations.models import CandidateList, RerankProfile
from recommendations.ranker.model import ranker_train
from recommendations.ranker.serving import active_ranker_clear, ranker_override
from recommendations.selectors import profile_for_surface, serving_config_clear
from recsys_project.celery import app as celery_app
from tests.recommendations.two_tower_factories import GROUPS, planted_shop
from training import evaluation, metrics
from training.ranker.training import DEFAULT_SOURCES, covisitation_neighbours_for, training_rows_build

pytestmark = pytest.mark.django_db
URL = "/api/v1/recommendations/users/{}"


@pytest.fixture
def ranked(settings, tmp_path):
    """The planted shop, a ranker trained on it (active), co-visitation read from its events, and one
    probe user per group who has just bought A_g (the planted next item is C_g)."""
    settings.RECSYS_RANKER_DIR = tmp_path / "ranker"
    active_ranker_clear()
    shop = planted_shop()
    data = evaluation.events_load()
    vectors = evaluation.item_vectors_load(data)
    rows = training_rows_build(data, np.arange(len(data.ts)), vectors, protocol="leave-one-out")
    ranker = ranker_train(rows.features, rows.labels, rows.groups, sources=DEFAULT_SOURCES)
    sources.covisitation_in_memory(covisitation_neighbours_for(data, np.arange(len(data.ts))))
    for g in range(GROUPS):
        _buy(f"probe-{g}", shop.a[g], minutes_ago=5)
    with ranker_override(ranker, name="v1"):
        yield shop, ranker
    sources.covisitation_in_memory(None)
    active_ranker_clear()


def _buy(user: str, item: Item, *, minutes_ago: float = 0.0, kind: str = "purchase") -> Event:
    return Event.objects.create(
        event_id=f"{user}-{item.external_id}-{kind}-{Event.objects.count()}",
        user_id=user,
        session_id=f"s-{user}",
        item=item,
        item_external_id=item.external_id,
        event_type=kind,
        timestamp=timezone.now() - timedelta(minutes=minutes_ago),
    )


def _serve(user: str, **params) -> scenarios.Answer:
    return scenarios.recommendations_for_user(user_id=user, params=scenarios.ListParams(**params))


def _live(user: str, settings, **params) -> scenarios.Answer:
    settings.RECSYS_CANDIDATE_CACHE = False
    try:
        return _serve(user, **params)
    finally:
        settings.RECSYS_CANDIDATE_CACHE = True


def _items(answer: scenarios.Answer) -> list[tuple[str, str]]:
    """Ids and reason types. The reason's anchor item may differ: the worker compares every candidate with
    the anchors, the live path only the best (by score) it loaded vectors for (the others: the newest)."""
    return [(item["id"], item["reason"]["type"]) for item in answer.items]


def test_cached_answers_equal_the_live_path_and_so_does_ndcg(ranked, settings):
    shop, _ = ranked
    users = [f"probe-{g}" for g in range(GROUPS)]
    assert candidate_lists_refresh(user_ids=users) == GROUPS
    cached_ndcg, live_ndcg = [], []
    for g, user in enumerate(users):
        cached = _serve(user, limit=10)
        live = _live(user, settings, limit=10)
        assert cached.cache == "hit" and live.cache == "miss:off"
        assert _items(cached) == _items(live)
        np.testing.assert_allclose(
            [i["score"] for i in cached.items], [i["score"] for i in live.items], rtol=1e-6
        )
        target = {shop.c[g].external_id}
        cached_ndcg.append(metrics.ndcg_at_k([i["id"] for i in cached.items], target, 10))
        live_ndcg.append(metrics.ndcg_at_k([i["id"] for i in live.items], target, 10))
    assert np.mean(cached_ndcg) == np.mean(live_ndcg) > 0.5


def test_a_new_event_makes_the_next_answer_live_until_the_worker_recomputes(
    ranked, settings, django_capture_on_commit_callbacks
):
    shop, _ = ranked
    candidate_lists_refresh(user_ids=["probe-0"])
    first = _serve("probe-0")
    assert first.cache == "hit"
    top = Item.objects.get(external_id=first.items[0]["id"])
    event = _buy("probe-0", top)  # bought: never recommended to them again

    after = _serve("probe-0")
    assert after.cache == "miss:events"
    assert top.external_id not in [i["id"] for i in after.items]

    # the worker applies the event to the vector; its signal recomputes the list
    celery_app.conf.task_always_eager = True
    try:
        with django_capture_on_commit_callbacks(execute=True):
            user_vectors_apply_task([event.pk])
    finally:
        celery_app.conf.task_always_eager = False
    recomputed = _serve("probe-0")
    assert recomputed.cache == "hit"
    assert _items(recomputed) == _items(_live("probe-0", settings))
    assert top.external_id not in [i["id"] for i in recomputed.items]


def test_an_item_out_of_stock_leaves_the_next_cached_answer(ranked, settings):
    candidate_lists_refresh(user_ids=["probe-1"])
    first = _serve("probe-1")
    gone = first.items[0]["id"]
    Item.objects.filter(external_id=gone).update(in_stock=False)
    after = _serve("probe-1")
    assert after.cache == "hit"  # stock is read fresh: the stored list still serves, without the item
    assert gone not in [i["id"] for i in after.items]
    assert len(after.items) == len(first.items)
    stored = set(
        Item.objects.filter(pk__in=CandidateList.objects.get(user_id="probe-1").item_pks).values_list(
            "external_id", flat=True
        )
    )
    assert {i["id"] for i in after.items} <= stored  # from the stored list (diversity may reorder it)
    # The live path now runs its sources with the item filtered out in SQL, which moves the other
    # candidates' source ranks (ranker features) by one, so its order may differ until the list is
    # recomputed; once it is, the cached answer is the live one again.
    candidate_lists_refresh(user_ids=["probe-1"])
    recomputed = _serve("probe-1")
    assert recomputed.cache == "hit"
    assert _items(recomputed) == _items(_live("probe-1", settings))
    assert gone not in [i["id"] for i in recomputed.items]


def test_a_model_promotion_makes_every_list_a_miss_until_recomputed(ranked, settings):
    _, ranker = ranked
    candidate_lists_refresh(user_ids=["probe-2", "probe-3"])
    assert _serve("probe-2").cache == "hit"
    with ranker_override(ranker, name="v2"):  # another version is active now
        assert _serve("probe-2").cache == "miss:key"
        candidate_lists_refresh(user_ids=["probe-2"])
        assert _serve("probe-2").cache == "hit"
        assert CandidateList.objects.get(user_id="probe-2").model_version == "ranker:v2"
        assert _serve("probe-3").cache == "miss:key"


def test_a_promotion_going_live_shows_in_the_next_cached_answer(ranked):
    shop, _ = ranked
    candidate_lists_refresh(user_ids=["probe-4"])
    before = _serve("probe-4")
    pinned = next(it for it in shop.noise if it.external_id not in [i["id"] for i in before.items])
    Promotion.objects.create(
        name="launch", target_type="item", item=pinned, pinned_slot=1, starts_at=timezone.now()
    )
    after = _serve("probe-4")
    assert after.cache == "hit"
    assert after.items[0]["id"] == pinned.external_id


def test_a_profile_edit_shows_in_the_next_answer(ranked, settings):
    shop, _ = ranked
    candidate_lists_refresh(user_ids=["probe-5"])
    before = _serve("probe-5")
    assert before.cache == "hit"
    # a re-ranking weight applies on the cached path at once
    profile, _ = RerankProfile.objects.get_or_create(surface="default")
    profile.diversity_mode, profile.max_per_category, profile.freshness_weight = "caps", 1, 5.0
    profile.save()
    serving_config_clear()
    edited = _serve("probe-5")
    assert edited.cache == "hit"
    assert _items(edited) != _items(before)
    assert _items(edited) == _items(_live("probe-5", settings))
    # a setting that shapes the candidates themselves makes the list a miss: bought items may show again
    profile.diversity_mode, profile.freshness_weight = "mmr", 0.05
    profile.exclude_bought_in = []
    profile.save()
    serving_config_clear()
    again = _serve("probe-5", limit=50)
    assert again.cache == "miss:key"
    assert shop.a[5].external_id in [i["id"] for i in again.items]


def test_a_list_older_than_the_bound_is_not_served(ranked, settings):
    candidate_lists_refresh(user_ids=["probe-6"])
    CandidateList.objects.filter(user_id="probe-6").update(
        computed_at=timezone.now() - timedelta(seconds=settings.RECSYS_CANDIDATE_CACHE_MAX_AGE_SECONDS + 5)
    )
    assert _serve("probe-6").cache == "miss:stale"


def test_filters_that_leave_too_few_cached_items_fall_back_to_the_live_path(ranked, settings):
    shop, _ = ranked
    cheap = shop.noise[:6]
    Item.objects.filter(pk__in=[it.pk for it in cheap]).update(price=5)
    candidate_lists_refresh(user_ids=["probe-7"])
    assert _serve("probe-7").cache == "hit"
    filtered = _serve("probe-7", max_price=6, limit=10)
    live = _live("probe-7", settings, max_price=6, limit=10)
    assert filtered.cache == "miss:filtered"
    assert _items(filtered) == _items(live)
    assert {i["id"] for i in filtered.items} <= {it.external_id for it in cheap}


def test_a_user_without_a_list_gets_the_live_path_and_the_sweep_fills_it(ranked, settings):
    shop, _ = ranked
    event = _buy("newcomer", shop.a[8])
    user_vectors_apply_task([event.pk])  # no eager Celery: the list is not computed by this
    answer = _serve("newcomer")
    assert answer.cache == "miss:none"
    assert "newcomer" in candidate_lists_due(profile=profile_for_surface(surface=""))
    assert candidate_lists_sweep(budget_seconds=30) >= 1
    assert _serve("newcomer").cache == "hit"
    assert "newcomer" not in candidate_lists_due(profile=profile_for_surface(surface=""))
    # an item gets its vector after the list was computed: the sweep recomputes the list once it is old
    # enough (CATALOG_MIN_AGE), without making it a miss meanwhile
    UserProfile.objects.filter(external_id="newcomer").update(
        updated_at=timezone.now() - timedelta(minutes=4)
    )
    CandidateList.objects.filter(user_id="newcomer").update(computed_at=timezone.now() - timedelta(minutes=3))
    assert "newcomer" not in candidate_lists_due(profile=profile_for_surface(surface=""))
    Item.objects.filter(pk=shop.noise[0].pk).update(embedded_at=timezone.now())
    assert "newcomer" in candidate_lists_due(profile=profile_for_surface(surface=""))
    assert _serve("newcomer").cache == "hit"


def test_serving_from_the_list_needs_no_redis(ranked, api, settings):
    candidate_lists_refresh(user_ids=["probe-9"])
    expected = _items(_serve("probe-9"))
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": "redis://127.0.0.1:1/0"}}
    response = api.get(URL.format("probe-9"))
    assert response.status_code == 200, response.content
    assert response["X-Recsys-Cache"] == "hit"
    assert [(i["id"], i["reason"]["type"]) for i in response.json()["items"]] == expected


def test_a_cache_hit_costs_two_queries_whatever_the_limit(ranked, api, django_assert_num_queries):
    """The user's state (history, newest event, list) with the list's candidates' features: one query;
    the served-list INSERT (on the request path: the tests run the log unbuffered); the API key, the
    models' versions and the profiles are cached per process."""
    candidate_lists_refresh(user_ids=["probe-10"])
    api.get(URL.format("probe-10"))  # warm: the API key's last_used_at touch, the serving config
    for limit in (5, 50):
        with django_assert_num_queries(2):
            response = api.get(URL.format("probe-10"), {"limit": limit})
        assert response["X-Recsys-Cache"] == "hit"


def test_a_ranker_promoted_through_the_registry_makes_the_next_answer_live(ranked, monkeypatch):
    from recommendations.models import ModelVersion
    from recommendations.ranker import serving as ranker_serving
    from recommendations.ranker.model import ranker_save
    from training.ranker.registry import ranker_activate

    _, ranker = ranked
    monkeypatch.setitem(ranker_serving._state, "override", None)  # the registry decides, as in production

    def promote(name: str) -> ModelVersion:
        version = ModelVersion.objects.create(kind=ModelVersion.Kind.RANKER)
        version.artifact_path = str(ranker_save(ranker, name=name))
        ranker_activate(version=version)
        return version

    first = promote("first")
    candidate_lists_refresh(user_ids=["probe-11"])
    assert _serve("probe-11").cache == "hit"
    second = promote("second")
    assert _serve("probe-11").cache == "miss:key"
    candidate_lists_refresh(user_ids=["probe-11"])
    assert _serve("probe-11").cache == "hit"
    assert first.pk != second.pk
    assert CandidateList.objects.get(user_id="probe-11").model_version == f"ranker:v{second.pk}"


def test_a_users_events_in_a_row_queue_one_refresh_until_it_runs(
    monkeypatch, django_capture_on_commit_callbacks
):
    """Coalescing: a refresh already queued for a user takes the next events too (it runs later and sees
    them); once it starts, the next event queues another."""
    from django.conf import settings
    from django.core.cache import cache

    from recommendations import tasks

    published: list[tuple[list[str], float | None]] = []
    monkeypatch.setattr(
        tasks, "_publish", lambda task, args, countdown=None: published.append((args[0], countdown))
    )
    cache.delete_many([tasks._pending_key(u) for u in ("c1", "c2")])
    with django_capture_on_commit_callbacks(execute=True):
        tasks.candidate_lists_enqueue(None, user_ids=["c1"])
        tasks.candidate_lists_enqueue(None, user_ids=["c1", "c2"])
        tasks.candidate_lists_enqueue(None, user_ids=["c2"])
    assert [ids for ids, _ in published] == [["c1"], ["c2"]]
    assert all(countdown == settings.RECSYS_CANDIDATE_CACHE_COALESCE_SECONDS for _, countdown in published)
    tasks._pending_clear(["c1"])  # what the task does first
    with django_capture_on_commit_callbacks(execute=True):
        tasks.candidate_lists_enqueue(None, user_ids=["c1", "c2"])
    assert [ids for ids, _ in published][2:] == [["c1"]]
    cache.delete_many([tasks._pending_key(u) for u in ("c1", "c2")])

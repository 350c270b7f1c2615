"""Candidate sources, each on a small generated shop with a planted pattern."""

from __future__ import annotations

import numpy as np
import pytest

from recommendations import sources
from recommendations.retrieval.base import HardFilters
from tests.factories import EventFactory, ItemFactory, blend, topic
from tests.recommendations.two_tower_factories import GROUPS, planted_shop
from training import evaluation
from training.ranker.training import covisitation_neighbours_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def in_memory_covisitation():
    """Co-visitation from every stored event, read from matrices (as evaluation does)."""
    data = evaluation.events_load()
    sources.covisitation_in_memory(covisitation_neighbours_for(data, np.arange(len(data.ts))))
    yield
    sources.covisitation_in_memory(None)


def test_bought_together_finds_what_others_bought_after_the_recent_item():
    shop = planted_shop()
    data = evaluation.events_load()
    sources.covisitation_in_memory(covisitation_neighbours_for(data, np.arange(len(data.ts))))
    try:
        for g in range(GROUPS):
            context = sources.SourceContext(recent=(shop.a[g].pk,))
            out = sources.bought_together(context, k=3, filters=HardFilters())
            assert max(out, key=out.get) == shop.c[g].pk
    finally:
        sources.covisitation_in_memory(None)


def test_bought_together_keeps_hard_filters_inside_the_query():
    shop = planted_shop()
    data = evaluation.events_load()
    sources.covisitation_in_memory(covisitation_neighbours_for(data, np.arange(len(data.ts))))
    try:
        context = sources.SourceContext(recent=(shop.a[0].pk,))
        out = sources.bought_together(
            context, k=3, filters=HardFilters(exclude_item_pks=frozenset({shop.c[0].pk}))
        )
        assert shop.c[0].pk not in out
        assert len(out) == 3  # the list is not shortened by the filter
    finally:
        sources.covisitation_in_memory(None)


def test_content_recent_searches_around_each_recent_item_not_their_mean():
    near_first = ItemFactory(embedding=topic(1, jitter=0.1, seed=1))
    near_second = ItemFactory(embedding=topic(2, jitter=0.1, seed=2))
    # closer to the mean of the two recent items than either neighbour is
    middles = ItemFactory.create_batch(3, embedding=blend((1, 1.0), (2, 1.0), (3, 1.0)))
    first, second = ItemFactory(embedding=topic(1)), ItemFactory(embedding=topic(2))
    filters = HardFilters(exclude_item_pks=frozenset({first.pk, second.pk}))
    context = sources.SourceContext(recent=(second.pk, first.pk), vector=blend((1, 1.0), (2, 1.0)))

    out = sources.content_recent(context, k=3, filters=filters)
    by_mean = sources.user_vector(context, k=3, filters=filters)

    assert {near_first.pk, near_second.pk} <= set(out)
    assert max(out, key=out.get) == near_second.pk  # the newest item's neighbour first
    assert set(by_mean) == {m.pk for m in middles}  # the mean vector finds neither


def test_trending_source_orders_by_popularity():
    from recommendations import services

    hot, cold = ItemFactory(), ItemFactory()
    for i in range(3):
        EventFactory(item=hot, user_id=f"u{i}", event_type="purchase")
    EventFactory(item=cold, user_id="u9", event_type="view")
    services.item_popularity_refresh()
    out = sources.trending(sources.SourceContext(), k=10, filters=HardFilters())
    assert out[hot.pk] > out[cold.pk]


def test_repeat_offers_own_purchases_only_when_the_profile_allows_it():
    a, b = ItemFactory(), ItemFactory()
    context = sources.SourceContext(recent=(a.pk, b.pk), bought=frozenset({b.pk}), allow_repeat=True)
    assert list(sources.repeat(context, k=5, filters=HardFilters())) == [b.pk]
    context.allow_repeat = False
    assert sources.repeat(context, k=5, filters=HardFilters()) == {}


def test_gather_gives_each_source_a_score_and_rank_column():
    shop = planted_shop()
    data = evaluation.events_load()
    sources.covisitation_in_memory(covisitation_neighbours_for(data, np.arange(len(data.ts))))
    try:
        context = sources.SourceContext(recent=(shop.a[0].pk,))
        gathered = sources.candidates_gather(
            context, names=("bought_together", "content_recent"), filters=HardFilters(), k=5
        )
        i = int(np.flatnonzero(gathered.pks == shop.c[0].pk)[0])
        assert gathered.ranks[i, 0] == 1.0
        assert gathered.scores.shape == (len(gathered.pks), 2)
        assert np.isnan(gathered.ranks).any()  # items one source did not offer
    finally:
        sources.covisitation_in_memory(None)


def _basket_shop():
    """Eight items bought together in one visit (v0 newest); other shoppers bought the target with the
    visit's three OLDEST items, and a decoy with its newest item only (fewer of them than the target's)."""
    from datetime import timedelta

    from django.utils import timezone

    visit = ItemFactory.create_batch(8)
    target, decoy = ItemFactory(), ItemFactory()
    ItemFactory.create_batch(5)  # noise: never bought with the visit
    start = timezone.now() - timedelta(days=30)
    for n in range(4):  # the target goes with the visit's oldest lines, one invoice each
        at = start + timedelta(days=n)
        for it in (*visit[5:], target):
            EventFactory(item=it, user_id=f"other-{n}", event_type="purchase", timestamp=at)
    for n in range(2):  # the decoy goes with the newest line
        at = start + timedelta(days=10 + n)
        for it in (visit[0], decoy):
            EventFactory(item=it, user_id=f"decoy-{n}", event_type="purchase", timestamp=at)
    # the user's visit: one invoice, newest line last written (same timestamp); an older visit first
    old = ItemFactory()
    EventFactory(item=old, user_id="shopper", event_type="purchase", timestamp=start + timedelta(days=15))
    at = start + timedelta(days=20)
    for i, it in enumerate(reversed(visit)):
        EventFactory(item=it, user_id="shopper", event_type="purchase", timestamp=at + timedelta(seconds=i))
    return visit, target, decoy, old


def test_user_history_knows_the_newest_visit_and_not_the_older_one():
    from recommendations import selectors

    visit, _, _, old = _basket_shop()
    _, history = selectors.user_context(user_id="shopper")
    assert history.last_visit == [it.pk for it in visit]  # newest first
    assert old.pk not in history.last_visit
    assert old.pk in dict(history.recent)


@pytest.mark.parametrize("table", [True, False], ids=["table", "in-memory"])
def test_last_visit_sums_the_whole_visit_where_bought_together_sees_its_newest_lines(table):
    from recommendations import covisitation, selectors

    visit, target, decoy, _ = _basket_shop()
    _, history = selectors.user_context(user_id="shopper")
    if table:
        covisitation.covisitation_rebuild()
    else:
        data = evaluation.events_load()
        sources.covisitation_in_memory(covisitation_neighbours_for(data, np.arange(len(data.ts))))
    try:
        context = sources.SourceContext(
            recent=tuple(pk for pk, _ in history.recent), visit=tuple(history.last_visit)
        )
        filters = HardFilters(exclude_item_pks=frozenset(history.bought_pks))
        out = sources.last_visit(context, k=5, filters=filters)
        newest_lines = sources.bought_together(context, k=5, filters=filters)
        assert max(out, key=out.get) == target.pk
        assert target.pk not in newest_lines and decoy.pk in newest_lines  # the control: 5 anchors miss it
        assert not set(out) & {it.pk for it in visit}  # the visit's own items are no candidates
        # the reason's anchor: one of the visit's items the target was bought with
        assert sources.visit_anchor(context, target.pk) in {it.pk for it in visit[5:]}
        assert sources.visit_anchor(context, decoy.pk) == visit[0].pk
    finally:
        sources.covisitation_in_memory(None)


def test_last_visit_keeps_hard_filters_inside_the_query():
    from recommendations import covisitation, selectors

    visit, target, _, _ = _basket_shop()
    covisitation.covisitation_rebuild()
    _, history = selectors.user_context(user_id="shopper")
    context = sources.SourceContext(visit=tuple(history.last_visit))
    out = sources.last_visit(context, k=5, filters=HardFilters(exclude_item_pks=frozenset({target.pk})))
    assert target.pk not in out and out  # the others are still offered


def test_prefetched_reads_give_the_same_candidates_and_features_in_two_round_trips():
    """`sources_prefetch` (the ranked live path) against each source reading for itself: the same union,
    scores, ranks and ranker features, to the bit, from two round trips instead of one per read."""
    from django.conf import settings
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from recommendations import covisitation, selectors, services
    from recommendations.ranker.features import context_features

    visit, _, _, _ = _basket_shop()
    ItemFactory.create_batch(5, embedding=topic(4))
    covisitation.covisitation_rebuild()
    services.item_popularity_refresh()
    _, history = selectors.user_context(user_id="shopper")
    recent = tuple(pk for pk, _ in history.recent)
    vectors = selectors.history_vectors(item_pks=recent)
    vector = selectors.weighted_mean([v for _, v in vectors.values()], [1.0] * len(vectors))
    filters = HardFilters(exclude_item_pks=frozenset({visit[1].pk}))
    names = ("bought_together", "viewed_together", "last_visit", "content_recent", "user_vector", "trending")
    now = timezone.now().timestamp()

    def served(prefetch: bool):
        context = sources.SourceContext(recent=recent, visit=tuple(history.last_visit), vector=vector)
        context.memo["filters"] = filters
        with CaptureQueriesContext(connection) as prefetched:
            if prefetch:
                sources.sources_prefetch(context, names=names, filters=filters, k=6)
        with CaptureQueriesContext(connection) as then:
            gathered = sources.candidates_gather(context, names=names, filters=filters, k=6)
            x = context_features(context, gathered, now_ts=now, dim=settings.EMBEDDING_DIM)
        return gathered, x, len(prefetched.captured_queries), len(then.captured_queries)

    alone, x_alone, _, queries_alone = served(prefetch=False)
    batched, x_batched, round_trips, queries_after = served(prefetch=True)

    assert alone.pks.tolist() == batched.pks.tolist() and len(alone.pks) > 6
    assert np.array_equal(alone.scores, batched.scores, equal_nan=True)
    assert np.array_equal(alone.ranks, batched.ranks, equal_nan=True)
    assert x_alone.tobytes() == x_batched.tobytes()
    # vectors, 3 co-visitation reads, 3 content searches, the user-vector search, trending; attributes
    assert queries_alone == 9 + 1
    assert (round_trips, queries_after) == (2, 1)  # then only the features' attributes

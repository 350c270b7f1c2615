"""Candidate sources, each on a small generated shop with a planted pattern."""

from __future__ import annotations

import numpy as np
import pytest

from analytics import evaluation
from recommendations import sources
from recommendations.ranker.training import covisitation_neighbours_for
from recommendations.retrieval.base import HardFilters
from tests.recommendations.factories import EventFactory, ItemFactory, blend, topic
from tests.recommendations.two_tower_factories import GROUPS, planted_shop

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

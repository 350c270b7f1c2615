"""One event-weight table (`settings.RECSYS_EVENT_WEIGHTS`): every consumer weighs an event of each type
exactly as the table says. The table is overridden with distinct weights, so a consumer that kept a table
of its own, or a default of its own, disagrees."""

from __future__ import annotations

import numpy as np
import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from interactions.models import EventType
from interactions.user_vectors import UserSums
from recommendations import covisitation, selectors
from recommendations.models import ItemPopularity
from recommendations.services import item_popularity_refresh
from tests.factories import EventFactory, ItemFactory
from training import evaluation

# Distinct primes: no two types share a weight, and none is a default (0 or 1).
TABLE = {
    "view": 2.0,
    "click": 3.0,
    "add_to_favorites": 5.0,
    "add_to_cart": 7.0,
    "contact_seller": 11.0,
    "purchase": 13.0,
    "review": 17.0,
}


@pytest.fixture(autouse=True)
def _table(settings):
    settings.RECSYS_EVENT_WEIGHTS = TABLE


def test_the_default_table_weighs_every_event_type():
    assert set(django_settings.RECSYS_EVENT_WEIGHTS) == set(EventType.values)
    assert set(TABLE) == set(EventType.values)


@pytest.mark.parametrize("event_type", EventType.values)
def test_user_vector_weighs_an_event_as_the_table(event_type):
    sums = UserSums(vector_sum=None, weight_sum=0.0, ref=None)
    sums.add([(event_type, timezone.now(), np.ones(4), 1.0)])
    assert sums.weight_sum == pytest.approx(TABLE[event_type])


@pytest.mark.parametrize("event_type", EventType.values)
def test_co_visitation_weighs_an_event_as_the_table(event_type):
    weight = covisitation.pair_weight(kind="viewed", type_a=event_type, type_b=event_type, dt_seconds=0)
    assert weight == pytest.approx(TABLE[event_type])


def test_evaluation_user_vector_weighs_events_as_the_table():
    """One evaluated user per type: a `view` of item 0 and an event of the type on item 1, at the same
    time. Their vector's components are in the ratio of the two weights."""
    types = [t for t in EventType.values if t != "view"]
    user_ids, item_idx, event_type = [], [], []
    for t in types:
        user_ids += [t, t]
        item_idx += [0, 1]
        event_type += ["view", t]
    n = len(user_ids)
    data = evaluation.EventData(
        user_ids=np.array(user_ids, dtype=object),
        item_idx=np.array(item_idx, dtype=np.int64),
        ts=np.zeros(n),
        event_type=np.array(event_type, dtype=object),
        item_pks=np.array([1, 2], dtype=np.int64),
        active=np.ones(2, dtype=bool),
    )
    split = evaluation.Split(protocol="leave-one-out", train=np.arange(n), users=types, test={})
    vectors = np.eye(2, dtype=np.float32)
    built = evaluation.user_vectors_build(data, split, vectors)
    for t in types:
        assert built[t][1] / built[t][0] * TABLE["view"] == pytest.approx(TABLE[t]), t


@pytest.mark.django_db
def test_popularity_and_the_fallback_vector_weigh_an_event_as_the_table():
    """One fresh event of each type, each on its own item and in its own session: an item's popularity
    score is its event's weight (no decay yet), and so is its weight in the history-built vector."""
    items = {}
    for t in EventType.values:
        items[t] = ItemFactory()
        EventFactory(item=items[t], event_type=t, user_id=None, session_id=f"s-{t}", timestamp=timezone.now())
    item_popularity_refresh()
    scores = dict(ItemPopularity.objects.values_list("item_id", "score"))
    for t, item in items.items():
        assert scores[item.pk] == pytest.approx(TABLE[t], rel=1e-3), t
        assert selectors.history_for(session_id=f"s-{t}").recent == [(item.pk, pytest.approx(TABLE[t]))], t

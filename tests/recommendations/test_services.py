"""Serving's writes: item popularity (the trending source) and the audit trail."""

from __future__ import annotations

from datetime import timedelta

import psycopg
import pytest
from django.db import connection
from django.utils import timezone

from recommendations.models import AuditEntry, ItemPopularity, RerankProfile
from recommendations.services import POPULARITY_LOCK_ID, audit_record, item_popularity_refresh
from tests.factories import EventFactory, ItemFactory

pytestmark = pytest.mark.django_db


def test_popularity_weighs_intent_and_recency_and_forgets_old_events():
    viewed, bought, old, recent = (ItemFactory() for _ in range(4))
    now = timezone.now()
    EventFactory(item=viewed, event_type="view", timestamp=now)
    EventFactory(item=bought, event_type="purchase", timestamp=now)
    EventFactory(item=old, event_type="purchase", timestamp=now - timedelta(days=45))  # outside the window
    EventFactory(item=recent, event_type="view", timestamp=now - timedelta(days=3))  # one half-life ago
    assert item_popularity_refresh() == 3
    scores = dict(ItemPopularity.objects.values_list("item_id", "score"))
    assert old.pk not in scores
    # intent: the one table of event weights (settings.RECSYS_EVENT_WEIGHTS: purchase 10, view 1)
    assert scores[bought.pk] == pytest.approx(10 * scores[viewed.pk], rel=1e-3)
    assert scores[recent.pk] == pytest.approx(0.5 * scores[viewed.pk], rel=1e-2)
    assert ItemPopularity.objects.get(item=bought).interaction_count == 1


def test_refresh_drops_items_whose_events_left_the_window():
    item = ItemFactory()
    event = EventFactory(item=item, timestamp=timezone.now())
    item_popularity_refresh()
    event.timestamp = timezone.now() - timedelta(days=60)
    event.save()
    assert item_popularity_refresh() == 0
    assert not ItemPopularity.objects.exists()


def test_refresh_steps_aside_while_another_one_runs():
    settings = connection.settings_dict
    with psycopg.connect(host=settings["HOST"], user=settings["USER"], dbname=settings["NAME"]) as other:
        other.execute("SELECT pg_advisory_lock(%s)", [POPULARITY_LOCK_ID])
        assert item_popularity_refresh() is None
        other.execute("SELECT pg_advisory_unlock(%s)", [POPULARITY_LOCK_ID])
    assert item_popularity_refresh() == 0


def test_audit_record_keeps_who_what_and_the_changes(django_user_model):
    user = django_user_model.objects.create_user("merch")
    profile = RerankProfile.objects.create(surface="home")
    entry = audit_record(user=user, action="change", obj=profile, changes={"mmr_lambda": [0.8, 0.5]})
    assert (entry.username, entry.model, entry.object_id) == (
        "merch",
        "recommendations.RerankProfile",
        str(profile.pk),
    )
    assert AuditEntry.objects.get().changes == {"mmr_lambda": [0.8, 0.5]}

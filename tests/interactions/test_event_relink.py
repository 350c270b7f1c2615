"""interactions.services.events_relink and its beat sweep: an event stored before its item existed is
linked once the item is there, even when the item was created by a path that did not link it, and is then
folded into its user's vector like any freshly stored event."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.core.cache import cache

from interactions import services
from interactions.models import Event, UserProfile
from interactions.tasks import unlinked_events_sweep_task, user_vectors_apply_task
from recommendations.tasks import _pending_key
from recsys_project.celery import app
from recsys_project.schedule import BEAT_SCHEDULE
from tests.factories import ItemFactory
from tests.interactions.events import validated_event

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def ingest(n: int, *, item_id: str, user_id: str | None = "u1") -> Event:
    services.events_ingest(
        events=[
            validated_event(
                event_id=f"late-{n}",
                user_id=user_id,
                session_id="s1",
                item_id=item_id,
                event_type="view",
                timestamp=T0,
            )
        ]
    )
    return Event.objects.get(event_id=f"late-{n}")


@pytest.fixture
def tasks_in_process(monkeypatch):
    """Queued user-vector tasks run here, at once (their on-commit callbacks still have to run)."""
    monkeypatch.setattr(
        user_vectors_apply_task, "apply_async", lambda args, retry: user_vectors_apply_task.apply(args=args)
    )


def test_an_event_stored_before_its_item_is_linked_by_the_sweep_and_folded_into_the_user_vector(
    tasks_in_process, django_capture_on_commit_callbacks
):
    # u1's coalescing mark (60 s) from an earlier test would hold back the list recompute asserted below
    cache.delete(_pending_key("u1"))
    early = ingest(1, item_id="late-sku")
    anonymous = ingest(2, item_id="late-sku", user_id=None)
    never = ingest(3, item_id="never-created")
    assert early.item_id is None and not early.vector_applied
    item = ItemFactory(external_id="late-sku")  # a direct create: nothing links the events

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert unlinked_events_sweep_task.apply().get() == 2

    early.refresh_from_db()
    anonymous.refresh_from_db()
    never.refresh_from_db()
    assert (early.item_id, anonymous.item_id, never.item_id) == (item.pk, item.pk, None)
    # one user-vector task (for u1's event only), one co-visitation fold of the newly linked events, and,
    # once u1's vector changed, the recompute of u1's pre-computed candidates
    assert sorted(c.__qualname__.split(".")[0] for c in callbacks) == [
        "candidate_lists_enqueue",
        "covisitation_enqueue",
        "user_vectors_enqueue",
    ]
    assert early.vector_applied
    assert UserProfile.objects.get(external_id="u1").embedding is not None


def test_the_sweep_links_in_bounded_batches():
    for n in range(5):
        ingest(n, item_id=f"sku-late-{n}")
    for n in range(5):
        ItemFactory(external_id=f"sku-late-{n}")
    assert services.events_relink(batch_size=2, max_batches=2) == 4
    assert Event.objects.filter(item__isnull=True).count() == 1
    assert services.events_relink(batch_size=2, max_batches=2) == 1
    assert services.events_relink(batch_size=2, max_batches=2) == 0
    assert not Event.objects.filter(item__isnull=True).exists()


def test_the_sweep_runs_every_10_minutes_on_the_maintenance_queue_with_an_expiry():
    entries = [
        e for e in BEAT_SCHEDULE.values() if e["task"] == "interactions.tasks.unlinked_events_sweep_task"
    ]
    assert len(entries) == 1
    assert 0 < entries[0]["options"]["expires"] <= 10 * 60
    assert len(entries[0]["schedule"].minute) == 6
    route = app.amqp.router.route({}, "interactions.tasks.unlinked_events_sweep_task")
    assert route["queue"].name == "maintenance"


def test_creating_an_item_links_its_early_events_through_the_catalog_signal():
    """catalog's `items_created` (inside the upsert's transaction) reaches interactions, which links the
    events held by the new item's raw id; the upsert reports how many."""
    from catalog.services import item_upsert

    ingest(1, item_id="early-sku")
    ingest(2, item_id="early-sku", user_id=None)
    ingest(3, item_id="other-sku")
    result = item_upsert(items=[{"id": "early-sku", "title": "Early"}])
    assert result.linked_events == 2
    linked = Event.objects.filter(item__external_id="early-sku").values_list("event_id", flat=True)
    assert sorted(linked) == ["late-1", "late-2"]
    assert Event.objects.get(event_id="late-3").item_id is None

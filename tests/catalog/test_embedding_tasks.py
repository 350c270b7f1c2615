"""Item vectors: catalog.item_vectors.items_embed, the tasks and the on-commit queueing in catalog.services."""

from __future__ import annotations

import logging
from contextlib import contextmanager
from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone

from catalog import services
from catalog.embedding import get_embedder
from catalog.item_vectors import items_embed
from catalog.models import Item
from catalog.signals import item_vectors_changed
from catalog.tasks import dirty_items_sweep_task, items_embed_task
from core.payloads import check_item

pytestmark = [pytest.mark.slow]


def upsert(*raw_items: dict) -> services.UpsertResult:
    clean = []
    for raw in raw_items:
        values, errors = check_item(raw)
        assert not errors, errors
        clean.append(values)
    return services.item_upsert(items=clean)


def item(external_id: str) -> Item:
    return Item.objects.get(external_id=external_id)


@pytest.mark.django_db
def test_dirty_item_gets_the_vector_of_its_text_from_the_current_model():
    upsert({"id": "a", "title": "Red wool scarf", "category_path": ["Fashion", "Scarves"]})
    result = items_embed()
    a = item("a")
    assert result.embedded == 1
    assert not a.embedding_dirty and a.embedding_claimed_at is None
    assert a.embedding_model == get_embedder().model_name
    assert a.embedded_hash == a.content_hash == a.compute_content_hash()
    expected = get_embedder().encode([a.embedding_text()])[0]
    np.testing.assert_allclose(np.asarray(a.embedding), expected, atol=1e-5)


@pytest.mark.django_db
def test_many_dirty_items_embed_in_one_round():
    upsert(*[{"id": f"i{n}", "title": f"Product number {n}"} for n in range(40)])
    result = items_embed(limit=64)
    assert result.embedded == 40
    assert not Item.objects.filter(embedding__isnull=True).exists()


@pytest.mark.django_db
def test_unchanged_text_is_not_re_embedded():
    upsert({"id": "a", "title": "Red wool scarf", "price": "10.00"})
    items_embed()
    first = item("a")
    # Same text, new price and stock: no change of the embedding text, so nothing to do.
    result = upsert({"id": "a", "title": "Red wool scarf", "price": "12.00", "stock": 3})
    assert result.updated == 1 and result.content_changed == []
    assert not item("a").embedding_dirty
    assert items_embed().claimed == 0
    assert item("a").embedded_at == first.embedded_at


@pytest.mark.django_db
def test_text_edited_back_and_forth_is_skipped_by_hash_without_a_forward_pass(monkeypatch):
    upsert({"id": "a", "title": "Red wool scarf"})
    items_embed()
    embedded_at = item("a").embedded_at
    upsert({"id": "a", "title": "Blue wool scarf"})
    upsert({"id": "a", "title": "Red wool scarf"})  # back to the embedded text, still marked dirty
    assert item("a").embedding_dirty
    calls = []
    embedder = get_embedder()
    monkeypatch.setattr(embedder, "encode", lambda texts: calls.append(texts) or np.zeros((0, 384)))
    result = items_embed()
    assert (result.claimed, result.embedded, result.skipped, calls) == (1, 0, 1, [])
    a = item("a")
    assert not a.embedding_dirty and a.embedded_at == embedded_at


@pytest.mark.django_db
def test_changed_text_is_re_embedded():
    upsert({"id": "a", "title": "Red wool scarf"})
    items_embed()
    before = np.asarray(item("a").embedding)
    upsert({"id": "a", "title": "USB charging cable"})
    assert items_embed().embedded == 1
    after = np.asarray(item("a").embedding)
    assert float(before @ after) < 0.9


@pytest.mark.django_db
def test_item_changed_during_the_forward_pass_stays_dirty_for_the_next_round(monkeypatch):
    upsert({"id": "a", "title": "Red wool scarf"})
    embedder = get_embedder()
    real_encode = embedder.encode

    def encode_while_someone_edits(texts):
        upsert({"id": "a", "title": "Green silk scarf"})  # commits: autocommit outside a transaction
        return real_encode(texts)

    monkeypatch.setattr(embedder, "encode", encode_while_someone_edits)
    items_embed()
    a = item("a")
    assert a.embedding is not None and a.embedding_dirty
    monkeypatch.setattr(embedder, "encode", real_encode)
    items_embed()
    a = item("a")
    assert not a.embedding_dirty and a.embedded_hash == a.compute_content_hash()


@pytest.mark.django_db
def test_items_claimed_by_a_live_worker_are_left_alone_but_an_expired_claim_is_taken_again():
    upsert({"id": "live", "title": "Lamp"}, {"id": "dead", "title": "Chair"})
    Item.objects.filter(external_id="live").update(embedding_claimed_at=timezone.now())
    Item.objects.filter(external_id="dead").update(embedding_claimed_at=timezone.now() - timedelta(hours=1))
    result = items_embed()
    assert result.embedded == 1
    assert item("dead").embedding is not None
    assert item("live").embedding is None and item("live").embedding_dirty


@pytest.mark.django_db
def test_failed_forward_pass_gives_the_claim_back(monkeypatch):
    upsert({"id": "a", "title": "Lamp"})
    embedder = get_embedder()

    def broken(texts):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(embedder, "encode", broken)
    with pytest.raises(RuntimeError):
        items_embed()
    a = item("a")
    assert a.embedding_dirty and a.embedding_claimed_at is None


@pytest.mark.django_db
def test_vectors_of_another_model_are_re_embedded_by_the_sweep():
    upsert({"id": "a", "title": "Lamp"})
    items_embed()
    Item.objects.filter(external_id="a").update(embedding_model="old-model")
    assert dirty_items_sweep_task() == 1
    assert item("a").embedding_model == get_embedder().model_name


@pytest.mark.django_db
def test_task_embeds_its_own_items_first_then_other_dirty_ones():
    upsert(*[{"id": f"old{n}", "title": f"Old product {n}"} for n in range(3)])
    upsert({"id": "new", "title": "New product"})
    assert items_embed_task.run(item_pks=[item("new").pk]) == 4
    assert not Item.objects.filter(embedding_dirty=True).exists()


@pytest.mark.django_db(transaction=True)
def test_vectors_changed_signal_is_sent_with_the_embedded_items():
    received = []

    def receiver(sender, item_pks, **kwargs):
        received.append(sorted(item_pks))

    item_vectors_changed.connect(receiver, dispatch_uid="test-receiver")
    try:
        upsert({"id": "a", "title": "Lamp"}, {"id": "b", "title": "Chair"})
        received.clear()
        items_embed()
    finally:
        item_vectors_changed.disconnect(dispatch_uid="test-receiver")
    assert received == [sorted([item("a").pk, item("b").pk])]


@contextmanager
def broker_at(url: str):
    """Point this process's Celery publisher at another broker URL (e.g. a closed port)."""
    from kombu import pools as kombu_pools

    from recsys_project.celery import app

    def drop_connections():
        # Producer pools are also cached by kombu, globally, per connection: reset them all, or a later
        # publish in this process reuses a pool closed here ("Acquire on closed pool").
        app._pool = None
        app.amqp._producer_pool = None
        kombu_pools.reset()

    old = app.conf.broker_url
    drop_connections()
    app.conf.broker_url = url
    try:
        yield
    finally:
        drop_connections()
        app.conf.broker_url = old


@pytest.mark.django_db(transaction=True)
def test_sweep_catches_up_on_items_written_while_the_broker_was_down(api, caplog):
    caplog.set_level(logging.WARNING, logger="catalog.tasks")
    with broker_at("redis://127.0.0.1:9/0"):  # nothing listens on port 9
        response = api.post(
            "/api/v1/items",
            {"items": [{"id": "a", "title": "Lamp"}, {"id": "b", "title": "Desk"}]},
            format="json",
        )
    assert response.status_code == 200, response.content
    assert response.json()["created"] == 2
    assert "could not queue the embedding of 2 items" in caplog.text
    assert set(Item.objects.filter(embedding_dirty=True).values_list("external_id", flat=True)) == {"a", "b"}
    assert dirty_items_sweep_task() == 2
    assert not Item.objects.filter(embedding__isnull=True).exists()


@pytest.mark.django_db(transaction=True)
def test_write_queues_the_embedding_task_on_commit(api, monkeypatch):
    queued = []
    monkeypatch.setattr(items_embed_task, "apply_async", lambda args, retry: queued.append(args))
    response = api.post("/api/v1/items", {"items": [{"id": "a", "title": "Lamp"}]}, format="json")
    assert response.status_code == 200
    assert queued == [[[item("a").pk]]]
    queued.clear()
    api.patch("/api/v1/items/a", {"price": "3.00"}, format="json")  # not in the text: item not dirty
    assert queued == []

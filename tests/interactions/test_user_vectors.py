"""interactions.user_vectors: decayed, weighted running sums; incremental == rebuild; pending events."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from django.core.management import call_command
from django.test import override_settings

from catalog.embedding import current_model_name
from catalog.models import Item
from interactions import services
from interactions.models import Event, UserProfile
from interactions.user_vectors import user_vectors_apply, user_vectors_apply_all, user_vectors_rebuild
from tests.interactions.events import validated_event

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
DIM = 384
HALF_LIFE_DAYS = 30
WEIGHTS = {
    "view": 1.0,
    "click": 2.0,
    "add_to_favorites": 4.0,
    "add_to_cart": 6.0,
    "contact_seller": 8.0,
    "purchase": 10.0,
    "review": 12.0,
}
pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _weights(settings):
    settings.RECSYS_EVENT_WEIGHTS = WEIGHTS
    settings.RECSYS_USER_HALF_LIFE_DAYS = HALF_LIFE_DAYS


def unit(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=DIM)
    return (v / np.linalg.norm(v)).astype(np.float32)


def embedded_item(external_id: str, vector: np.ndarray | None) -> Item:
    return Item.objects.create(
        external_id=external_id,
        title=external_id,
        embedding=vector,
        embedding_model=current_model_name() if vector is not None else "",
        embedding_dirty=vector is None,
    )


_counter = iter(range(10**9))


def ingest(*events: tuple[str, str, str, datetime]) -> list[int]:
    """Store (user, item external id, type, timestamp) events through the ingestion service."""
    result = services.events_ingest(
        events=[
            validated_event(
                event_id=f"e{next(_counter)}",
                user_id=user,
                session_id="s",
                item_id=item_id,
                event_type=event_type,
                timestamp=ts,
            )
            for user, item_id, event_type, ts in events
        ]
    )
    return [pk for _user, pk in result.stored]


def user_vector(user: str) -> np.ndarray:
    return np.asarray(UserProfile.objects.get(external_id=user).embedding, dtype=np.float64)


def normalised(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def test_user_vector_is_the_weighted_mean_by_event_type():
    a, b = unit(1), unit(2)
    embedded_item("a", a)
    embedded_item("b", b)
    ingest(("u", "a", "view", T0), ("u", "b", "purchase", T0))
    user_vectors_apply_all()
    expected = normalised(1.0 * a.astype(np.float64) + 10.0 * b)
    np.testing.assert_allclose(user_vector("u"), expected, atol=1e-5)
    assert float(user_vector("u") @ b) > float(user_vector("u") @ a)


def test_event_weights_are_ordered_from_view_to_review():
    order = ["view", "click", "add_to_favorites", "add_to_cart", "contact_seller", "purchase", "review"]
    from django.conf import settings

    defaults = settings.RECSYS_EVENT_WEIGHTS
    assert [defaults[t] for t in order] == sorted(defaults[t] for t in order)
    assert len(set(defaults.values())) == len(order)


def test_an_event_one_half_life_older_counts_half():
    a, b = unit(1), unit(2)
    embedded_item("a", a)
    embedded_item("b", b)
    ingest(("u", "a", "view", T0), ("u", "b", "view", T0 + timedelta(days=HALF_LIFE_DAYS)))
    user_vectors_apply_all()
    np.testing.assert_allclose(user_vector("u"), normalised(0.5 * a.astype(np.float64) + b), atol=1e-5)
    profile = UserProfile.objects.get(external_id="u")
    assert profile.decay_ref_at == T0 + timedelta(days=HALF_LIFE_DAYS)
    assert profile.weight_sum == pytest.approx(1.5)


def test_a_newer_event_in_a_later_batch_decays_the_running_sums():
    a, b = unit(1), unit(2)
    embedded_item("a", a)
    embedded_item("b", b)
    ingest(("u", "a", "purchase", T0))
    user_vectors_apply_all()
    ingest(("u", "b", "purchase", T0 + timedelta(days=2 * HALF_LIFE_DAYS)))
    user_vectors_apply_all()
    np.testing.assert_allclose(user_vector("u"), normalised(0.25 * a.astype(np.float64) + b), atol=1e-5)
    assert UserProfile.objects.get(external_id="u").weight_sum == pytest.approx(10 * 1.25)


@override_settings(RECSYS_USER_HALF_LIFE_DAYS=7)
def test_half_life_is_a_setting():
    a, b = unit(1), unit(2)
    embedded_item("a", a)
    embedded_item("b", b)
    ingest(("u", "a", "view", T0), ("u", "b", "view", T0 + timedelta(days=7)))
    user_vectors_apply_all()
    np.testing.assert_allclose(user_vector("u"), normalised(0.5 * a.astype(np.float64) + b), atol=1e-5)


def test_applying_the_same_events_twice_counts_them_once():
    embedded_item("a", unit(1))
    pks = ingest(("u", "a", "view", T0))
    assert user_vectors_apply(event_pks=pks).events == 1
    assert user_vectors_apply(event_pks=pks).events == 0
    assert UserProfile.objects.get(external_id="u").weight_sum == pytest.approx(1.0)


def test_events_of_items_without_a_vector_wait_and_are_applied_once_the_item_is_embedded():
    a, b = unit(1), unit(2)
    embedded_item("a", a)
    pks = ingest(("u", "a", "view", T0), ("u", "later", "purchase", T0))  # "later" is not in the catalog
    user_vectors_apply(event_pks=pks)
    np.testing.assert_allclose(user_vector("u"), a, atol=1e-5)
    pending = Event.objects.get(item_external_id="later")
    assert not pending.vector_applied
    # The item arrives (events get linked), then is embedded: its events are applied.
    item = embedded_item("later", b)
    Event.objects.filter(pk=pending.pk).update(item=item)
    assert user_vectors_apply_all(item_pks=[item.pk]).events == 1
    np.testing.assert_allclose(user_vector("u"), normalised(a.astype(np.float64) + 10 * b), atol=1e-5)


def test_anonymous_events_do_not_make_profiles():
    embedded_item("a", unit(1))
    ingest((None, "a", "view", T0))
    assert user_vectors_apply_all().events == 0
    assert not UserProfile.objects.exists()


def test_incremental_updates_equal_a_rebuild_from_scratch():
    rng = random.Random(7)
    vectors = {f"i{n}": unit(100 + n) for n in range(30)}
    for external_id, vector in vectors.items():
        embedded_item(external_id, vector)
    embedded_item("unembedded", None)
    users = [f"user{n}" for n in range(12)]
    types = list(WEIGHTS)
    # 8 batches, applied as they arrive, with timestamps out of order within and across batches.
    for _batch in range(8):
        events = [
            (
                rng.choice(users),
                rng.choice([*vectors, "unembedded"]),
                rng.choice(types),
                T0 + timedelta(hours=rng.uniform(0, 24 * 120)),
            )
            for _ in range(rng.randint(5, 40))
        ]
        user_vectors_apply(event_pks=ingest(*events))
    incremental = {
        p.external_id: (np.asarray(p.embedding), p.weight_sum, p.decay_ref_at)
        for p in UserProfile.objects.all()
    }
    assert len(incremental) == 12
    call_command("rebuild_user_vectors", stdout=open("/dev/null", "w"))  # noqa: SIM115
    for profile in UserProfile.objects.all():
        vector, weight_sum, ref = incremental[profile.external_id]
        np.testing.assert_allclose(np.asarray(profile.embedding), vector, atol=1e-5)
        assert profile.weight_sum == pytest.approx(weight_sum, rel=1e-5)
        assert profile.decay_ref_at == ref
    # Events of the unembedded item are still pending after the rebuild.
    assert Event.objects.filter(item_external_id="unembedded", vector_applied=False).exists() == (
        Event.objects.filter(item_external_id="unembedded").exists()
    )


def test_rebuild_clears_the_vector_of_a_user_without_events():
    embedded_item("a", unit(1))
    ingest(("u", "a", "view", T0))
    user_vectors_apply_all()
    Event.objects.filter(user_id="u").delete()
    user_vectors_rebuild(user_ids=["u"])
    profile = UserProfile.objects.get(external_id="u")
    assert profile.embedding is None and profile.weight_sum == 0


def test_rebuild_command_refuses_unknown_users():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="unknown user ids: ghost"):
        call_command("rebuild_user_vectors", "--user", "ghost")


def test_events_without_a_profile_get_one_when_applied():
    item = embedded_item("a", unit(1))
    Event.objects.create(
        event_id="imported", user_id="imp", item=item, item_external_id="a", event_type="view", timestamp=T0
    )
    assert not UserProfile.objects.filter(external_id="imp").exists()
    assert user_vectors_apply_all().events == 1
    np.testing.assert_allclose(user_vector("imp"), unit(1), atol=1e-5)


def test_rebuilding_an_unknown_user_leaves_no_empty_profile_behind():
    user_vectors_rebuild(user_ids=["erased-meanwhile"])
    assert not UserProfile.objects.filter(external_id="erased-meanwhile").exists()

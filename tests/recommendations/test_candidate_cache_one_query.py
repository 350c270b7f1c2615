"""A cache hit reads the stored list's candidates' features in the query that reads the user's state
(`selectors.user_state` with a `ServeCheck`): its answers must be the answers of the two-query path it
replaces (the features read on their own, `selectors.items_features`), to the item, order, score and
reason, on a generated shop with stock, filters, promotions (pinned inside and outside the list, twice,
out of stock, boosts), a history longer than the explanations' cut, and lists whose scores tie at the
pool's cut."""

from __future__ import annotations

from dataclasses import asdict
from datetime import timedelta
from decimal import Decimal

import numpy as np
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from catalog.models import Item, Promotion
from interactions.models import Event
from recommendations import candidate_cache, scenarios, selectors
from recommendations.candidate_cache import Computed, candidate_list_save, candidate_lists_refresh
from recommendations.models import CandidateList, ItemPopularity, RerankProfile
from tests.factories import ItemFactory, UserProfileFactory, blend, topic

pytestmark = pytest.mark.django_db

USERS = [f"gen-{u}" for u in range(8)]
OPTIONS = [
    {},
    {"limit": 1},
    {"limit": 5},
    {"limit": 30},  # a pool of 150: more than the stored list holds
    {"limit": 5, "category": ("Home", "c1")},
    {"limit": 5, "max_price": Decimal("40")},
    {"limit": 8, "exclude_pks": None},  # the list's best items, filled in below
]


@pytest.fixture
def shop(settings):
    """240 items in 4 categories with prices, stock (low, out) and ages (some new, for exploration), a
    popularity row for a third of them; 8 users with a vector and 10-45 events (views, purchases, repeats)
    and a list computed by the worker; 2 users whose list is written by hand: every score tied, stored
    out of order, with source reasons."""
    rng = np.random.default_rng(7)
    now = timezone.now()
    items = []
    for i in range(240):
        items.append(
            ItemFactory(
                external_id=f"g-{i}",
                embedding=topic(i % 12, jitter=0.6, seed=i),
                category_path=["Home", f"c{i % 4}"],
                brand=f"b{i % 7}",
                price=Decimal(5 + (i * 7) % 90),
                stock=[None, 0, 2, 50][i % 4] if i % 5 else None,
                published_at=now - timedelta(days=float(rng.integers(0, 60))),
            )
        )
    Item.objects.filter(pk__in=[it.pk for it in items[::17]]).update(in_stock=False)
    for it in items[::3]:
        ItemPopularity.objects.create(item=it, score=1.0, interaction_count=int(rng.integers(0, 40)))
    RerankProfile.objects.update_or_create(surface="default", defaults={"candidate_k": 60})
    selectors.serving_config_clear()
    for u, user in enumerate(USERS):
        UserProfileFactory(external_id=user, embedding=blend((u % 12, 1.0), ((u + 3) % 12, 0.5)))
        for n in range(10 + 5 * u):
            item = items[int(rng.integers(0, 240))] if n % 4 else items[u]  # repeats of one item
            Event.objects.create(
                event_id=f"{user}-{n}",
                user_id=user,
                item=item,
                item_external_id=item.external_id,
                event_type="purchase" if n % 9 == 0 else "view",
                timestamp=now - timedelta(minutes=200 - n),
            )
    assert candidate_lists_refresh(user_ids=USERS) == len(USERS)
    for user, order in (("gen-0", 1), ("gen-1", -1)):
        row = CandidateList.objects.get(user_id=user)
        pks = row.item_pks[::order][:80]
        candidate_list_save(
            user_id=user,
            computed=Computed(
                key=row.key,
                last_event_id=row.last_event_id,
                scenario=row.scenario,
                model_version="ranker:test",
                item_pks=pks,
                scores=[0.5] * len(pks),  # all tied: the pool's cut is by pk
                reasons=[{"type": "trending"} if i % 3 else None for i in range(len(pks))],
                computed_at=row.computed_at,
            ),
        )
    return items


def _answer(user: str, options: dict, *, one_query: bool, now, monkeypatch) -> dict:
    """The answer at `now`; without `one_query`, `user_state` is asked for no features, so the hit reads
    them on their own, as before."""
    with monkeypatch.context() as patch:
        patch.setattr(timezone, "now", lambda: now)  # both paths at the same instant
        if not one_query:
            alone = selectors.user_state
            patch.setattr(selectors, "user_state", lambda *, user_id, serve=None: alone(user_id=user_id))
        answer = scenarios.recommendations_for_user(user_id=user, params=scenarios.ListParams(**options))
    return {"cache": answer.cache, "scenario": answer.scenario, "items": answer.items}


def _answers(monkeypatch, now) -> list[tuple[str, dict, dict]]:
    out = []
    for user in USERS:
        for options in OPTIONS:
            if "exclude_pks" in options:
                best = CandidateList.objects.get(user_id=user).item_pks[:6]
                options = {**options, "exclude_pks": frozenset(best)}
            one = _answer(user, options, one_query=True, now=now, monkeypatch=monkeypatch)
            two = _answer(user, options, one_query=False, now=now, monkeypatch=monkeypatch)
            out.append((f"{user} {options}", one, two))
    return out


def test_a_hit_read_in_one_query_answers_what_the_two_query_path_answers(shop, monkeypatch):
    now = timezone.now()
    plain = _answers(monkeypatch, now)
    # promotions: pinned in the list, pinned outside it (twice, at two slots), pinned but out of stock,
    # and a category boost
    stored = CandidateList.objects.get(user_id="gen-3").item_pks
    history = Event.objects.filter(user_id="gen-3").values_list("item_id", flat=True)
    shown = Item.objects.exclude(pk__in=[*stored, *history]).filter(is_active=True, in_stock=True)
    outside = list(shown.exclude(stock=0).order_by("pk")[:2])
    gone = shown.order_by("-pk").first()
    Item.objects.filter(pk=gone.pk).update(in_stock=False)
    start = now - timedelta(days=1)
    for name, item, slot in (
        ("in", Item.objects.get(pk=stored[7]), 2),
        ("out", outside[0], 1),
        ("out twice", outside[1], 4),
        ("out twice again", outside[1], 6),
        ("gone", gone, 3),
    ):
        Promotion.objects.create(name=name, target_type="item", item=item, pinned_slot=slot, starts_at=start)
    Promotion.objects.create(
        name="boost", target_type="category", category_path=["Home", "c2"], boost=1.4, starts_at=start
    )
    selectors.serving_config_clear()
    promoted = _answers(monkeypatch, now)

    hits = 0
    for label, one, two in plain + promoted:
        assert one == two, label
        hits += one["cache"] == "hit"
    assert hits >= len(plain + promoted) * 0.8  # the comparison is about hits: most answers are
    reasons = {i["reason"]["type"] for _, one, _ in plain + promoted for i in one["items"]}
    assert {"promoted", "trending", "because_you_viewed"} <= reasons
    assert any(i["reason"].get("explore") for _, one, _ in plain for i in one["items"])
    first = [one for label, one, _ in promoted if label.startswith("gen-3 {}")][0]
    assert first["items"][0]["id"] == outside[0].external_id  # pinned from outside the list, at slot 1
    assert gone.external_id not in {i["id"] for _, one, _ in promoted for i in one["items"]}


def test_a_hit_is_one_query_and_a_miss_reads_no_features(shop, monkeypatch, request):
    """The user's state with the list's features, then nothing else (the served-list log is buffered in
    production; the tests write it unbuffered, so its INSERT is the second query here)."""
    # the serving config and the models' versions must not expire between the two requests on a loaded
    # machine (each is one more query), nor outlive this test
    from recommendations.ranker import serving as ranker_serving
    from recommendations.two_tower import serving as two_tower_serving

    monkeypatch.setattr(selectors, "CONFIG_TTL_SECONDS", 3600.0)
    monkeypatch.setattr(ranker_serving, "ACTIVE_TTL_SECONDS", 3600.0)
    monkeypatch.setattr(two_tower_serving, "ACTIVE_TTL_SECONDS", 3600.0)
    for clear in (
        selectors.serving_config_clear,
        ranker_serving.active_ranker_clear,
        two_tower_serving.active_version_clear,
    ):
        clear()
        request.addfinalizer(clear)
    scenarios.recommendations_for_user(user_id="gen-4", params=scenarios.ListParams())  # warm the config
    with CaptureQueriesContext(connection) as queries:
        hit = scenarios.recommendations_for_user(user_id="gen-4", params=scenarios.ListParams())
    assert hit.cache == "hit"
    statements = [q["sql"] for q in queries.captured_queries]
    assert len(statements) == 2 and "recommendations_servedlist" in statements[1], statements
    assert statements[0].strip().startswith("WITH e AS")  # the prepared one is logged with its text too
    # prepared on the server (parsed and planned once per connection), and nothing else is
    with connection.cursor() as cur:
        cur.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [row[0] for row in cur.fetchall()]
    assert prepared and all(p.strip().startswith("WITH e AS") for p in prepared), prepared

    CandidateList.objects.filter(user_id="gen-4").update(key="another")
    plan = scenarios._cache_plan(scenarios.ListParams())
    state = selectors.user_state(user_id="gen-4", serve=plan.check)
    assert state.cached is not None and state.features is None  # a miss: the live path reads its own
    CandidateList.objects.filter(user_id="gen-4").update(
        key=plan.key, computed_at=plan.fresh_after - timedelta(microseconds=1)
    )
    assert selectors.user_state(user_id="gen-4", serve=plan.check).features is None  # too old by 1 µs
    CandidateList.objects.filter(user_id="gen-4").update(computed_at=plan.fresh_after)
    assert selectors.user_state(user_id="gen-4", serve=plan.check).features is not None


def test_the_state_read_with_the_features_is_the_state_read_alone(shop):
    plan = scenarios._cache_plan(scenarios.ListParams())
    for user in [*USERS, "nobody"]:
        alone = selectors.user_state(user_id=user)
        both = selectors.user_state(user_id=user, serve=plan.check)
        assert asdict(both.history) == asdict(alone.history)
        assert (both.newest_event_id, both.vector_text) == (alone.newest_event_id, alone.vector_text)
        assert (both.cached is None) == (alone.cached is None)
        if alone.cached is not None:
            assert asdict(both.cached) == asdict(alone.cached)
    assert candidate_cache.enabled()


def test_with_prepared_statements_off_a_hit_answers_the_same_unprepared(shop, settings, monkeypatch):
    """RECSYS_DB_PREPARED_STATEMENTS=0 (behind a transaction-mode pooler): the same one statement, not
    prepared, and the same answer."""
    prepared: list[bool] = []
    execute = selectors._PreparedCursor.execute

    def recording(self, *args, **kwargs):
        prepared.append(True)
        return execute(self, *args, **kwargs)

    monkeypatch.setattr(selectors._PreparedCursor, "execute", recording)
    params = scenarios.ListParams()
    on = scenarios.recommendations_for_user(user_id="gen-4", params=params)
    assert on.cache == "hit" and prepared
    prepared.clear()
    settings.RECSYS_DB_PREPARED_STATEMENTS = False
    off = scenarios.recommendations_for_user(user_id="gen-4", params=params)
    assert off.cache == "hit" and not prepared
    assert [(i["id"], i["score"], i["reason"]) for i in off.items] == [
        (i["id"], i["score"], i["reason"]) for i in on.items
    ]

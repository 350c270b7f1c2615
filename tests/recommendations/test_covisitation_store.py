"""Co-visitation in Postgres (recommendations/covisitation.py): the incremental fold equals a full
recompute, compaction keeps the sums, each event counts once, and the neighbours selector reads the
normalised top-k with the hard filters inside."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from django.db import connection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from interactions.models import Event
from recommendations import covisitation as cv
from recommendations.models import CovisitationDelta, CovisitationPair
from recommendations.retrieval.base import HardFilters
from tests.factories import EventFactory, ItemFactory

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def stored() -> dict[str, dict[tuple[int, int], float]]:
    """Compacted + pending weights, summed, per kind."""
    out: dict[str, dict[tuple[int, int], float]] = {kind: {} for kind in cv.KINDS}
    for model in (CovisitationPair, CovisitationDelta):
        for kind, a, b, w in model.objects.values_list("kind", "item_a", "item_b", "weight"):
            out[kind][(a, b)] = out[kind].get((a, b), 0.0) + w
    return out


def recomputed() -> dict[str, dict[tuple[int, int], float]]:
    events = cv.covisitation_events_load()
    pks, local = np.unique(events["items"], return_inverse=True)
    matrices = cv.covisitation_matrices(
        actors=events["actors"],
        items=local,
        ts=events["ts"],
        event_types=events["event_types"],
        n_items=len(pks),
    )
    out = {}
    for kind, m in matrices.items():
        coo = m.tocoo()
        out[kind] = {
            (int(pks[r]), int(pks[c])): float(w) for r, c, w in zip(coo.row, coo.col, coo.data, strict=True)
        }
    return out


def assert_same(got, want):
    for kind in cv.KINDS:
        assert set(got[kind]) == set(want[kind]), kind
        for key, w in want[kind].items():
            assert got[kind][key] == pytest.approx(w, rel=1e-9, abs=1e-9), (kind, key)


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    events=st.lists(
        st.tuples(
            st.sampled_from([("u1", ""), ("u2", ""), (None, "s1"), (None, "s2")]),
            st.integers(0, 3),
            st.sampled_from([0, 0, 60, 3 * 3600, 9 * 86400, 31 * 86400]),
            st.sampled_from(["view", "click", "add_to_cart", "purchase"]),
        ),
        min_size=1,
        max_size=14,
    ),
    batches=st.lists(st.integers(1, 5), min_size=1, max_size=14),
    order_seed=st.integers(0, 2**16),
)
def test_incremental_fold_in_any_order_equals_full_recompute(events, batches, order_seed):
    Event.objects.all().delete()
    CovisitationPair.objects.all().delete()
    CovisitationDelta.objects.all().delete()
    items = [ItemFactory() for _ in range(4)]
    pks = []
    for (user, session), item, seconds, event_type in events:
        e = EventFactory(
            user_id=user,
            session_id=session,
            item=items[item],
            event_type=event_type,
            timestamp=T0 + timedelta(seconds=seconds),
        )
        pks.append(e.pk)
    # arrival order differs from event time order; batches of any size
    pks = list(np.random.default_rng(order_seed).permutation(pks))
    start = 0
    for size in batches * len(pks):
        if start >= len(pks):
            break
        cv.covisitation_fold(event_pks=[int(p) for p in pks[start : start + size]])
        start += size
    assert_same(stored(), recomputed())


def test_folding_an_event_twice_counts_it_once():
    a, b = ItemFactory(), ItemFactory()
    e1 = EventFactory(item=a, event_type="purchase", timestamp=T0)
    e2 = EventFactory(item=b, event_type="purchase", timestamp=T0 + timedelta(minutes=5))
    assert cv.covisitation_fold(event_pks=[e1.pk]) == 1
    assert cv.covisitation_fold(event_pks=[e2.pk, e1.pk]) == 1
    assert cv.covisitation_fold(event_pks=[e1.pk, e2.pk]) == 0
    assert_same(stored(), recomputed())


def test_compaction_merges_deltas_without_changing_the_sums():
    items = [ItemFactory() for _ in range(5)]
    evs = [
        EventFactory(
            user_id=f"u{u}", item=items[i], event_type="add_to_cart", timestamp=T0 + timedelta(hours=i)
        )
        for u in range(3)
        for i in range(5)
    ]
    cv.covisitation_fold(event_pks=[e.pk for e in evs[:7]])
    before = stored()
    result = cv.covisitation_compact()
    assert result.merged > 0
    assert CovisitationDelta.objects.count() == 0
    assert_same(stored(), before)
    cv.covisitation_fold(event_pks=[e.pk for e in evs[7:]])  # folding goes on after a compaction
    cv.covisitation_compact()
    assert_same(stored(), recomputed())


def test_compaction_prunes_an_item_to_its_best_neighbours(monkeypatch):
    monkeypatch.setattr(cv, "KEEP_NEIGHBOURS", 2)
    anchor, *others = [ItemFactory() for _ in range(5)]
    evs = []
    for n, other in enumerate(others):
        for u in range(n + 1):  # later items co-occur with the anchor more often
            evs += [
                EventFactory(user_id=f"u{n}-{u}", item=anchor, event_type="purchase", timestamp=T0),
                EventFactory(user_id=f"u{n}-{u}", item=other, event_type="purchase", timestamp=T0),
            ]
    cv.covisitation_fold(event_pks=[e.pk for e in evs])
    cv.covisitation_compact()
    kept = set(
        CovisitationPair.objects.filter(kind="bought", item_a=anchor.pk)
        .exclude(item_b=anchor.pk)
        .values_list("item_b", flat=True)
    )
    assert kept == {others[2].pk, others[3].pk}
    assert CovisitationPair.objects.filter(kind="bought", item_a=anchor.pk, item_b=anchor.pk).exists()
    # "shoppers": n + 1 shoppers over sqrt(n + 1) ranks the later items first too
    kept_shoppers = set(
        CovisitationPair.objects.filter(kind="shoppers", item_a=anchor.pk)
        .exclude(item_b=anchor.pk)
        .values_list("item_b", flat=True)
    )
    assert kept_shoppers == {others[2].pk, others[3].pk}


def test_rebuild_prunes_exactly_as_fold_and_compaction_do(monkeypatch):
    """The rebuild prunes in numpy before writing; the fold's compaction prunes in SQL: same table."""
    monkeypatch.setattr(cv, "KEEP_NEIGHBOURS", 2)
    items = [ItemFactory() for _ in range(6)]
    evs = []
    for u in range(12):
        for n, item in enumerate(items[: 2 + u % 5]):
            kind = "purchase" if (u + n) % 3 else "view"
            evs.append(
                EventFactory(
                    user_id=f"u{u}", item=item, event_type=kind, timestamp=T0 + timedelta(hours=u + n)
                )
            )
    cv.covisitation_fold(event_pks=[e.pk for e in evs])
    cv.covisitation_compact()
    folded = stored()
    assert len([k for k in folded["shoppers"] if k[0] == items[0].pk]) == 3  # 2 neighbours + itself
    cv.covisitation_rebuild()
    assert_same(stored(), folded)


def test_rebuild_marks_every_event_folded_and_matches_the_recompute():
    items = [ItemFactory() for _ in range(3)]
    for u in range(2):
        for i, item in enumerate(items):
            EventFactory(user_id=f"u{u}", item=item, event_type="view", timestamp=T0 + timedelta(minutes=i))
    assert cv.covisitation_rebuild() > 0
    assert not Event.objects.filter(covisitation_folded=False).exists()
    assert_same(stored(), recomputed())
    assert cv.covisitation_fold_pending() == 0


def planted():
    """Anchor 0 is bought with item 1 by many, with best-seller 2 by as many but 2 sells with everything."""
    items = [ItemFactory(category_path=["Home"] if i != 1 else ["Garden"]) for i in range(6)]
    n = 0
    evs = []

    def order(user, basket):
        nonlocal n
        n += 1
        for pk in basket:
            evs.append(
                EventFactory(
                    user_id=user, item=items[pk], event_type="purchase", timestamp=T0 + timedelta(days=n)
                )
            )

    for u in range(6):
        order(f"a{u}", [0, 1])
        order(f"b{u}", [0, 2])
    for u in range(30):
        order(f"c{u}", [2, 3 + u % 3])
    order("d", [0, 4])
    cv.covisitation_fold(event_pks=[e.pk for e in evs])
    return items


def test_neighbours_rank_the_planted_partner_above_the_best_seller():
    items = planted()
    got = cv.covisitation_neighbours(item_pks=[items[0].pk], kind="bought", k=3)
    ranked = list(got[items[0].pk])
    assert ranked[:2] == [items[1].pk, items[2].pk]
    assert items[0].pk not in ranked


def test_neighbours_apply_hard_filters_and_exclude_anchors_in_one_query(django_assert_num_queries):
    items = planted()
    with django_assert_num_queries(1):
        got = cv.covisitation_neighbours(
            item_pks=[items[0].pk, items[2].pk],
            kind="bought",
            k=10,
            filters=HardFilters(category_prefix=("Home",), exclude_item_pks=frozenset({items[4].pk})),
        )
    assert items[1].pk not in got[items[0].pk]  # Garden
    assert items[4].pk not in got[items[0].pk]
    assert items[2].pk not in got[items[0].pk] and items[0].pk not in got[items[2].pk]  # anchors


def test_neighbours_are_the_normalised_matrix_row():
    items = planted()
    raw = recomputed()["bought"]
    pop = {a: w for (a, b), w in raw.items() if a == b}
    a0 = items[0].pk
    want = {
        b: w / (pop[a0] ** cv.ANCHOR_EXPONENT * pop[b] ** cv.NEIGHBOUR_EXPONENT)
        for (a, b), w in raw.items()
        if a == a0 and b != a0
    }
    got = cv.covisitation_neighbours(item_pks=[a0], kind="bought", k=10)[a0]
    assert got == pytest.approx(want)


def test_an_item_without_events_has_no_neighbours():
    item = ItemFactory()
    assert cv.covisitation_neighbours(item_pks=[item.pk], kind="viewed", k=5) == {item.pk: {}}


def test_ingested_events_queue_their_fold_on_commit(django_capture_on_commit_callbacks):
    from interactions.services import events_ingest

    item = ItemFactory()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        events_ingest(
            events=[
                {
                    "event_id": "x1",
                    "user_id": None,
                    "session_id": "s9",
                    "item_id": item.external_id,
                    "event_type": "view",
                    "timestamp": T0,
                    "device_type": "",
                    "recommendation_id": None,
                    "surface": "",
                    "position": None,
                    "value": None,
                    "quantity": None,
                }
            ]
        )
    names = [getattr(cb, "__qualname__", "") for cb in callbacks]
    assert any("covisitation_enqueue" in n for n in names), names


def test_events_of_one_actor_never_pair_with_another_actors():
    a, b = ItemFactory(), ItemFactory()
    e1 = EventFactory(user_id="u1", item=a, event_type="purchase", timestamp=T0)
    e2 = EventFactory(user_id=None, session_id="u1", item=b, event_type="purchase", timestamp=T0)
    cv.covisitation_fold(event_pks=[e1.pk, e2.pk])
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM recommendations_covisitationdelta WHERE item_a <> item_b")
        assert cur.fetchone()[0] == 0


def test_rebuild_command_writes_the_pairs_and_reports_them():
    from io import StringIO

    from django.core.management import call_command

    a, b = ItemFactory(), ItemFactory()
    EventFactory(item=a, event_type="purchase", timestamp=T0)
    EventFactory(item=b, event_type="purchase", timestamp=T0)
    out = StringIO()
    call_command("covisitation_rebuild", stdout=out)
    assert "co-visitation rebuilt: 12 rows" in out.getvalue()  # per kind (3): a->b, b->a, two popularity rows
    assert CovisitationPair.objects.filter(kind="bought", item_a=a.pk, item_b=b.pk).exists()


# The selectors' previous SQL, which computed the scores, the ranks and the sums in Postgres: the reads now
# compute them in numpy from the same rows and must give the same numbers to the bit.
_REFERENCE_NEIGHBOURS_SQL = f"""
WITH w AS (
    SELECT u.item_a, u.item_b, sum(u.weight) AS weight FROM (
        SELECT item_a, item_b, weight FROM {cv._PAIR} WHERE kind = %(kind)s AND item_a = ANY(%(anchors)s)
        UNION ALL
        SELECT item_a, item_b, weight FROM {cv._DELTA} WHERE kind = %(kind)s AND item_a = ANY(%(anchors)s)
    ) u GROUP BY u.item_a, u.item_b
),
ok AS (
    SELECT i.id FROM catalog_item i
    WHERE i.id IN (SELECT item_b FROM w) AND i.id <> ALL(%(anchors)s) AND {{where}}
),
needed AS (
    SELECT id AS item FROM ok
    UNION
    SELECT item_b FROM w WHERE item_b = ANY(%(anchors)s)
),
pop AS (
    SELECT u.item, sum(u.weight) AS pop FROM (
        SELECT item_a AS item, weight FROM {cv._PAIR}
        WHERE kind = %(kind)s AND item_a = item_b AND item_a = ANY(ARRAY(SELECT item FROM needed))
        UNION ALL
        SELECT item_a, weight FROM {cv._DELTA}
        WHERE kind = %(kind)s AND item_a = item_b AND item_a = ANY(ARRAY(SELECT item FROM needed))
    ) u GROUP BY u.item
),
scored AS (
    SELECT w.item_a, w.item_b,
           w.weight / (power(GREATEST(COALESCE(pa.pop, 0), 1e-12), %(ae)s)
                       * power(GREATEST(COALESCE(pb.pop, 0), 1e-12), %(ne)s)) AS score
    FROM w
    JOIN ok ON ok.id = w.item_b
    LEFT JOIN pop pa ON pa.item = w.item_a
    LEFT JOIN pop pb ON pb.item = w.item_b
),
ranked AS (
    SELECT item_a, item_b, score,
           row_number() OVER (PARTITION BY item_a ORDER BY score DESC, item_b) AS rank
    FROM scored
)
SELECT item_a, item_b, score FROM ranked WHERE rank <= %(k)s ORDER BY item_a, rank
"""
_REFERENCE_SUMMED_SQL = (
    _REFERENCE_NEIGHBOURS_SQL.split("ranked AS")[0].rstrip().rstrip(",")
    + """
SELECT item_b, sum(score) AS total, count(*) AS hits,
       (array_agg(item_a ORDER BY score DESC, item_a))[1] AS top_anchor
FROM scored GROUP BY item_b ORDER BY total DESC, item_b LIMIT %(k)s
"""
)


def _reference(sql: str, *, anchors: list[int], kind: str, k: int, filters: HardFilters | None, ae: float):
    from recommendations.retrieval.pgvector_backend import filters_where

    where, params = ("i.is_active", {}) if filters is None else filters_where(filters, require_vector=False)
    params |= {"kind": kind, "anchors": sorted(anchors), "k": k, "ae": ae, "ne": cv.NEIGHBOUR_EXPONENT}
    with connection.cursor() as cur:
        cur.execute(sql.format(where=where), params)
        return cur.fetchall()


@pytest.mark.parametrize("anchor_exponent", [0.0, 0.5])
def test_reads_equal_the_previous_sql_to_the_bit(monkeypatch, anchor_exponent):
    """Random baskets, some folded and compacted, some pending (the sums of both tables), filters that
    drop neighbours, anchors that are each other's neighbours, ties: every score, rank and sum is the
    same float as the SQL that computed them before, in the same order."""
    monkeypatch.setattr(cv, "ANCHOR_EXPONENT", anchor_exponent)
    rng = np.random.default_rng(7)
    items = [
        ItemFactory(category_path=["Home"] if i % 4 else ["Garden"], is_active=i % 11 != 5) for i in range(40)
    ]
    evs = []
    for u in range(120):
        basket = rng.choice(40, size=int(rng.integers(2, 7)), replace=False)
        kind = "purchase" if u % 3 else "view"
        for n, i in enumerate(basket):
            evs.append(
                EventFactory(
                    user_id=f"u{u % 50}",
                    item=items[int(i)],
                    event_type=kind,
                    timestamp=T0 + timedelta(days=u // 50, hours=int(rng.integers(0, 48)), minutes=n),
                )
            )
    half = len(evs) // 2
    cv.covisitation_fold(event_pks=[e.pk for e in evs[:half]])
    cv.covisitation_compact()
    cv.covisitation_fold(event_pks=[e.pk for e in evs[half:]])
    assert CovisitationDelta.objects.exists() and CovisitationPair.objects.exists()
    pks = [it.pk for it in items]
    filters_cases = [
        None,
        HardFilters(),
        HardFilters(category_prefix=("Home",), exclude_item_pks=frozenset(pks[3:6])),
    ]
    for kind in cv.KINDS:
        for anchors in (pks[:1], pks[:5], pks[::3], pks):
            for filters in filters_cases:
                for k in (1, 3, 500):
                    args = {
                        "anchors": anchors,
                        "kind": kind,
                        "k": k,
                        "filters": filters,
                        "ae": anchor_exponent,
                    }
                    want: dict[int, dict[int, float]] = {pk: {} for pk in sorted(set(anchors))}
                    for a, b, score in _reference(_REFERENCE_NEIGHBOURS_SQL, **args):
                        want[a][b] = score
                    got = cv.covisitation_neighbours(item_pks=anchors, kind=kind, k=k, filters=filters)
                    assert got == want and [list(r) for r in got.values()] == [list(r) for r in want.values()]
                    want_summed = [
                        (b, (total, hits, top))
                        for b, total, hits, top in _reference(_REFERENCE_SUMMED_SQL, **args)
                    ]
                    got_summed = cv.covisitation_summed(item_pks=anchors, kind=kind, k=k, filters=filters)
                    assert list(got_summed.items()) == want_summed

"""The pure co-visitation rules (recommendations/covisitation.py): pair weights, the vectorised full
recompute against a pair-by-pair reference, and a planted "bought together" pattern."""

from __future__ import annotations

import itertools
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import sparse

from interactions.selectors import event_weight
from recommendations import covisitation as cv

TYPES = ("view", "click", "add_to_cart", "purchase")


def reference_matrices(actors, items, ts, types, n_items) -> dict[str, np.ndarray]:
    """Pair by pair through `directed_pair_weights`, as the fold thinks of it; "shoppers" as sets of
    actors per item and per pair."""
    out = {kind: np.zeros((n_items, n_items)) for kind in cv.KINDS}
    had: dict[int, set] = {}
    for actor, item in zip(actors, items, strict=True):
        had.setdefault(int(item), set()).add(actor)
    for a in had:
        for b in had:
            out["shoppers"][a, b] = len(had[a] & had[b])
    for kind in cv.WINDOWED_KINDS:
        for i in range(len(items)):
            if cv.event_counts_in(kind=kind, event_type=types[i]):
                out[kind][items[i], items[i]] += event_weight(types[i])
        for i, j in itertools.combinations(range(len(items)), 2):
            if actors[i] != actors[j] or items[i] == items[j]:
                continue
            a, b = (i, j) if ts[i] <= ts[j] else (j, i)
            fwd, back = cv.directed_pair_weights(
                kind=kind, type_a=types[a], type_b=types[b], dt_seconds=ts[b] - ts[a]
            )
            out[kind][items[a], items[b]] += fwd
            out[kind][items[b], items[a]] += back
    return out


def test_bought_pairs_ignore_views():
    assert cv.pair_weight(kind="bought", type_a="view", type_b="purchase", dt_seconds=0) == 0.0
    assert cv.pair_weight(kind="viewed", type_a="view", type_b="purchase", dt_seconds=0) > 0.0
    assert cv.pair_weight(kind="bought", type_a="add_to_cart", type_b="purchase", dt_seconds=0) > 0.0


def test_pair_weight_decays_with_the_gap_and_stops_at_the_window():
    near = cv.pair_weight(kind="bought", type_a="purchase", type_b="purchase", dt_seconds=60)
    far = cv.pair_weight(kind="bought", type_a="purchase", type_b="purchase", dt_seconds=cv.HALF_LIFE_SECONDS)
    outside = cv.pair_weight(
        kind="bought", type_a="purchase", type_b="purchase", dt_seconds=cv.WINDOW_SECONDS + 1
    )
    assert near > far > 0.0
    assert far == pytest.approx(
        cv.pair_weight(kind="bought", type_a="purchase", type_b="purchase", dt_seconds=0) / 2
    )
    assert outside == 0.0


def test_backward_direction_counts_less_and_a_tie_counts_the_mean():
    fwd, back = cv.directed_pair_weights(kind="viewed", type_a="view", type_b="view", dt_seconds=10)
    assert back == pytest.approx(fwd * cv.BACKWARD_FACTOR)
    a, b = cv.directed_pair_weights(kind="viewed", type_a="view", type_b="view", dt_seconds=0)
    assert a == b == pytest.approx((1 + cv.BACKWARD_FACTOR) / 2)


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="kind"):
        cv.pair_weight(kind="liked", type_a="view", type_b="view", dt_seconds=0)
    with pytest.raises(ValueError, match="windowed"):
        cv.pair_weight(kind="shoppers", type_a="view", type_b="view", dt_seconds=0)


def test_shoppers_count_each_actor_once_per_pair_at_any_distance():
    # u1 buys 0 and 1 three times a year apart; u2 views 0 and, 400 days later, 1; u3 has only 1
    day = 86400.0
    rows = [("u1", 0, 0.0, "purchase"), ("u1", 1, 0.0, "purchase")] * 3 + [
        ("u1", 0, 365 * day, "purchase"),
        ("u1", 1, 730 * day, "purchase"),
        ("u2", 0, 0.0, "view"),
        ("u2", 1, 400 * day, "view"),
        ("u3", 1, 5.0, "click"),
    ]
    actors, items, ts, types = (np.array(col, dtype=object) for col in zip(*rows, strict=True))
    m = cv.covisitation_matrices(
        actors=actors, items=items.astype(np.int64), ts=ts.astype(np.float64), event_types=types, n_items=3
    )["shoppers"].toarray()
    assert m[0, 1] == m[1, 0] == 2  # u1 and u2, however often and however far apart
    assert m[0, 0] == 2 and m[1, 1] == 3  # distinct actors per item
    assert m[2].sum() == 0


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 2),  # actor
            st.integers(0, 4),  # item
            st.sampled_from([0.0, 30.0, 3600.0, 5 * 86400.0, 40 * 86400.0]),  # time
            st.sampled_from(TYPES),
        ),
        max_size=25,
    )
)
def test_vectorised_matrices_equal_the_pair_by_pair_rules(events):
    actors = np.array([f"u{e[0]}" for e in events], dtype=object)
    items = np.array([e[1] for e in events], dtype=np.int64)
    ts = np.array([e[2] for e in events], dtype=np.float64)
    types = np.array([e[3] for e in events], dtype=object)
    got = cv.covisitation_matrices(actors=actors, items=items, ts=ts, event_types=types, n_items=5)
    want = reference_matrices(actors, items, ts, types, 5)
    for kind in cv.KINDS:
        np.testing.assert_allclose(got[kind].toarray(), want[kind], rtol=1e-9, atol=1e-12)


def test_planted_basket_pattern_ranks_first_after_normalisation():
    rng = np.random.default_rng(0)
    n_items, rows = 30, []
    # 40 shoppers buy item 1 with item 2 in one order; everybody also buys best-seller 0 now and then
    for user in range(200):
        day = float(rng.integers(0, 300)) * 86400.0
        basket = list(rng.choice(np.arange(3, n_items), size=3, replace=False)) + [0]
        if user < 40:
            basket += [1, 2]
        rows += [(f"u{user}", int(item), day, "purchase") for item in basket]
    actors, items, ts, types = (np.array(col, dtype=object) for col in zip(*rows, strict=True))
    raw = cv.covisitation_matrices(
        actors=actors,
        items=items.astype(np.int64),
        ts=ts.astype(np.float64),
        event_types=types,
        n_items=n_items,
    )["bought"]
    scores = cv.covisitation_normalise(raw, cv.covisitation_popularity(raw))
    row = scores.getrow(1).toarray().ravel()
    assert int(np.argmax(row)) == 2
    assert row[1] == 0.0  # never its own neighbour


def test_empty_history_gives_empty_matrices():
    empty = np.zeros(0)
    out = cv.covisitation_matrices(
        actors=empty.astype(object),
        items=empty.astype(np.int64),
        ts=empty,
        event_types=empty.astype(object),
        n_items=3,
    )
    assert all(m.nnz == 0 and m.shape == (3, 3) for m in out.values())


def reference_pruned(raw: np.ndarray, keep: int) -> dict[tuple[int, int], float]:
    """Row by row, as `_PRUNE_SQL` orders: score = weight / pop(b) ** NEIGHBOUR_EXPONENT, best first, ties
    by the smaller column; weights under MIN_WEIGHT dropped; the popularity diagonal kept."""
    pop = np.maximum(np.diag(raw), 1e-12)
    out = {}
    for a in range(raw.shape[0]):
        if raw[a, a] > 0:
            out[(a, a)] = raw[a, a]
        offered = [b for b in range(raw.shape[1]) if b != a and raw[a, b] >= cv.MIN_WEIGHT]
        offered.sort(key=lambda b: (-raw[a, b] / pop[b] ** cv.NEIGHBOUR_EXPONENT, b))
        out |= {(a, b): raw[a, b] for b in offered[:keep]}
    return out


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 7), st.integers(0, 7), st.sampled_from([0.0005, 1.0, 2.0, 3.0, 4.0])),
        max_size=60,
    ),
    st.integers(1, 4),
)
def test_pruning_keeps_each_rows_best_neighbours_ties_by_column(entries, keep):
    # few distinct weights: ties everywhere; duplicates summed; entries in any order (not canonical)
    rows, cols, vals = (np.array(c) for c in zip(*entries, strict=True)) if entries else ([], [], [])
    raw = sparse.coo_matrix((vals, (rows, cols)), shape=(8, 8)).tocsr()
    want = reference_pruned(raw.toarray(), keep)
    with mock.patch.object(cv, "KEEP_NEIGHBOURS", keep):
        got = cv.covisitation_pruned(raw)
        unsorted = sparse.csr_matrix(
            (vals[::-1], (rows[::-1], cols[::-1])) if entries else ([], ([], [])), shape=(8, 8)
        )
        got_unsorted = cv.covisitation_pruned(unsorted)
    for pruned in (got, got_unsorted):
        as_dict = {
            (int(r), int(c)): float(w) for r, c, w in zip(pruned.row, pruned.col, pruned.data, strict=True)
        }
        assert as_dict.keys() == want.keys()
        assert all(as_dict[k] == pytest.approx(w) for k, w in want.items())

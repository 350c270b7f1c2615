"""Item-to-item co-visitation ("bought together", "viewed together"): the pure rules, no database.

Two items co-visit when the same actor (a user, or an anonymous session) interacted with both within
`WINDOW_SECONDS`. Each such pair of events adds to two directed weights: the earlier item -> the later
one gets the full pair weight, the other direction `BACKWARD_FACTOR` of it (what is bought after A
predicts "with A" better than what was bought before it); simultaneous events (one order, one invoice)
give both directions the mean of the two. The pair weight is the geometric mean of the two event-type
weights (`settings.RECSYS_EVENT_WEIGHTS`, the one table) times a decay in the time gap.

Kinds: "bought" pairs use only add_to_cart and purchase events (both ends); "viewed" pairs use every event
type. A raw matrix is item x item per kind; its diagonal (an item never pairs with itself) holds each
item's popularity within the kind, the sum of its qualifying event weights, which the normalisation
divides by.

"shoppers" counts differently: how many distinct actors interacted with both items, at any time apart and
with any event type (each actor once per pair, symmetric); its diagonal is how many distinct actors
interacted with the item. It is the classic "customers who bought this also bought" count, and on Online
Retail's validation targets it beats the windowed, weighted kinds clearly (README "Sources and ranker"): a
wholesaler's repeat orders add to a windowed sum every time, but to this count once. The database keeps exactly these numbers (recommendations/covisitation_store.py) and folds
each new event in with the same rules; `covisitation_matrices` is the full recompute it must equal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from django.db import connection, transaction
from scipy import sparse

from core.replicas import read_connection
from core.round_trip import Read
from interactions.selectors import event_weight
from recommendations.retrieval.base import HardFilters

KINDS = ("bought", "viewed", "shoppers")
# the kinds built from event pairs inside the window, with the pair weights below
WINDOWED_KINDS = ("bought", "viewed")
BOUGHT_EVENT_TYPES = frozenset({"add_to_cart", "purchase"})

# Chosen on the leave-one-out validation item of Online Retail (bench/covisitation.py; the figures are in
# docs/bought-together.md): 7 days and a 1-day half-life. Re-checked on both protocols' validation
# targets with the table read as served (`--sweep-windows`, docs/benchmarks.md, "Sources and ranker"): longer windows
# with summed weights lose clearly (90 d / 30 d 0.0117 / 0.0406 NDCG@10 leave-one-out / temporal, a year
# without decay 0.0077 / 0.0254, against 0.0161 / 0.0452 here: a wholesaler's repeat orders dominate); 14 d
# with a 3-day half-life did a little better alone (0.0180 / 0.0462), but through the whole served path
# (bench/ranker.py --validation, leave-one-out, 300 users) last_visit fell 0.0217 -> 0.0207 and the ranker
# stopped at 2 trees (served 0.0218 -> 0.0123), so the default stays.
WINDOW_SECONDS = 7 * 86400.0
HALF_LIFE_SECONDS = 86400.0
# The reverse direction (B bought after A, read as "A with B") counts this fraction of the forward one.
# 0.25, 0.5 and 1.0 were within 0.0002 NDCG@10 on validation (ties dominate there); the smallest won.
BACKWARD_FACTOR = 0.25
# score(a -> b) = raw(a, b) / (pop(a) ** ANCHOR_EXPONENT * pop(b) ** NEIGHBOUR_EXPONENT): the neighbour's
# square root damps best-sellers that co-visit with everything (no damping 0.0210, sqrt 0.0227, full
# division 0.0004: it promotes one-off items). Dividing by the anchor's too (0.0215) evens out what each
# item of a cart adds, which validation (summing the last visit's items) did not reward.
NEIGHBOUR_EXPONENT = 0.5
ANCHOR_EXPONENT = 0.0


def event_counts_in(*, kind: str, event_type: str) -> bool:
    """Whether an event of this type takes part in pairs (and popularity) of this kind."""
    if kind not in KINDS:
        raise ValueError(f"unknown co-visitation kind {kind!r}; one of {', '.join(KINDS)}")
    return kind != "bought" or event_type in BOUGHT_EVENT_TYPES


def pair_weight(*, kind: str, type_a: str, type_b: str, dt_seconds: float) -> float:
    """The contribution of one ordered pair (a at t, then b at t + dt, dt >= 0) to the directed weight
    a -> b of a windowed kind. Zero when either event does not count in `kind` or the gap exceeds the
    window."""
    if kind not in WINDOWED_KINDS:
        raise ValueError(f"not a windowed co-visitation kind: {kind!r}; one of {', '.join(WINDOWED_KINDS)}")
    if dt_seconds < 0:
        raise ValueError("dt_seconds must be >= 0 (a happens first)")
    if not (event_counts_in(kind=kind, event_type=type_a) and event_counts_in(kind=kind, event_type=type_b)):
        return 0.0
    if dt_seconds > WINDOW_SECONDS:
        return 0.0
    return float(
        np.sqrt(event_weight(type_a) * event_weight(type_b)) * 0.5 ** (dt_seconds / HALF_LIFE_SECONDS)
    )


def directed_pair_weights(*, kind: str, type_a: str, type_b: str, dt_seconds: float) -> tuple[float, float]:
    """(a -> b, b -> a) for a at t and b at t + dt: forward and backward, or both the mean on a tie."""
    forward = pair_weight(kind=kind, type_a=type_a, type_b=type_b, dt_seconds=dt_seconds)
    if dt_seconds == 0:
        both = forward * (1.0 + BACKWARD_FACTOR) / 2.0
        return both, both
    return forward, forward * BACKWARD_FACTOR


# --- vectorised: the same rules over arrays of events


def _weights_vector(event_types: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per event: its type weight, and whether it counts in "bought"."""
    types, codes = np.unique(np.asarray(event_types, dtype=object).astype(str), return_inverse=True)
    w = np.array([event_weight(t) for t in types], dtype=np.float64)[codes]
    bought = np.array([t in BOUGHT_EVENT_TYPES for t in types], dtype=bool)[codes]
    return w, bought


def event_pairs(*, actors: np.ndarray, ts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every pair of events (i, j) of the same actor at most WINDOW_SECONDS apart, each unordered pair
    once, with ts[i] <= ts[j]. Work is proportional to the number of pairs: offsets grow one at a time
    and only events that still have a partner at the previous offset stay in play."""
    n = len(ts)
    if n < 2:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    _, actor_codes = np.unique(np.asarray(actors), return_inverse=True)
    order = np.lexsort((np.asarray(ts, dtype=np.float64), actor_codes))
    live, partner = _visit_pairs(actor=actor_codes[order], t=np.asarray(ts, dtype=np.float64)[order])
    return order[live].astype(np.int64), order[partner].astype(np.int64)


def pair_contributions(
    *,
    kind: str,
    items: np.ndarray,
    ts: np.ndarray,
    event_types: np.ndarray,
    left: np.ndarray,
    right: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Directed (row, col, weight) triplets of the event pairs (left[k] at or before right[k]), both
    directions, pairs of the same item and zero weights dropped. `directed_pair_weights`, on arrays."""
    w, bought = _weights_vector(event_types)
    items = np.asarray(items, dtype=np.int64)
    ts = np.asarray(ts, dtype=np.float64)
    dt = ts[right] - ts[left]
    keep = (items[left] != items[right]) & (dt <= WINDOW_SECONDS)
    if kind == "bought":
        keep &= bought[left] & bought[right]
    elif kind != "viewed":
        raise ValueError(f"not a windowed co-visitation kind: {kind!r}; one of {', '.join(WINDOWED_KINDS)}")
    left, right, dt = left[keep], right[keep], dt[keep]
    forward = np.sqrt(w[left] * w[right]) * np.power(0.5, dt / HALF_LIFE_SECONDS)
    tie = dt == 0
    backward = np.where(tie, forward * (1.0 + BACKWARD_FACTOR) / 2.0, forward * BACKWARD_FACTOR)
    forward = np.where(tie, backward, forward)
    rows = np.concatenate([items[left], items[right]])
    cols = np.concatenate([items[right], items[left]])
    vals = np.concatenate([forward, backward])
    nonzero = vals > 0
    return rows[nonzero], cols[nonzero], vals[nonzero]


def item_popularity(*, kind: str, items: np.ndarray, event_types: np.ndarray, n_items: int) -> np.ndarray:
    """Each item's popularity within `kind`: the sum of its counting events' type weights."""
    w, bought = _weights_vector(event_types)
    if kind == "bought":
        w = np.where(bought, w, 0.0)
    return np.bincount(np.asarray(items, dtype=np.int64), weights=w, minlength=n_items).astype(np.float64)


def actor_codes(actors: np.ndarray) -> np.ndarray:
    """An int code per event's actor (numbered in order of first appearance). A dict pass: np.unique on
    an object array of 500,000 ids sorts by Python comparisons, seconds where this takes a tenth."""
    index: dict = {}
    return np.fromiter((index.setdefault(a, len(index)) for a in actors), dtype=np.int64, count=len(actors))


def shoppers_matrix(*, actors: np.ndarray, items: np.ndarray, n_items: int) -> sparse.csr_matrix:
    """The "shoppers" kind: (a, b) = how many distinct actors had both items, (a, a) = how many had a.
    `actors` may be given as `actor_codes`."""
    items = np.asarray(items, dtype=np.int64)
    if not len(items):
        return sparse.csr_matrix((n_items, n_items), dtype=np.float64)
    codes = actors if np.issubdtype(np.asarray(actors).dtype, np.integer) else actor_codes(actors)
    x = sparse.csr_matrix(
        (np.ones(len(items), dtype=np.float64), (codes, items)), shape=(int(codes.max()) + 1, n_items)
    )
    x.sum_duplicates()
    x.data[:] = 1.0  # had it or not
    m = (x.T @ x).tocsr()
    m.sum_duplicates()
    return m


def _visits(*, codes: np.ndarray, ts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Events grouped into visits, one per (actor, timestamp): each event's visit number, and each
    visit's actor code and time, visits numbered in (actor, time) order."""
    n = len(ts)
    order = np.lexsort((ts, codes))
    a, t = codes[order], ts[order]
    first = np.ones(n, dtype=bool)
    first[1:] = (a[1:] != a[:-1]) | (t[1:] != t[:-1])
    visit = np.empty(n, dtype=np.int64)
    visit[order] = np.cumsum(first) - 1
    return visit, a[first], t[first]


def _visit_pairs(*, actor: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every pair of rows (i, j), i < j, of the same actor at most WINDOW_SECONDS apart, rows in (actor,
    time) order so that t[i] <= t[j]: over visits for the recompute, over events for `event_pairs`."""
    n = len(t)
    left, right = [np.zeros(0, dtype=np.int64)], [np.zeros(0, dtype=np.int64)]
    live = np.arange(max(n - 1, 0))
    offset = 1
    while live.size:
        partner = live + offset
        inside = partner < n
        live, partner = live[inside], partner[inside]
        near = (actor[partner] == actor[live]) & (t[partner] - t[live] <= WINDOW_SECONDS)
        live, partner = live[near], partner[near]
        left.append(live)
        right.append(partner)
        offset += 1
    return np.concatenate(left), np.concatenate(right)


def covisitation_matrices(
    *, actors: np.ndarray, items: np.ndarray, ts: np.ndarray, event_types: np.ndarray, n_items: int
) -> dict[str, sparse.csr_matrix]:
    """Raw directed weights per kind (item x item, float64, canonical CSR) from event arrays; items are
    indices 0..n_items-1, ts epoch seconds. The diagonal holds each item's popularity in that kind. The
    same rules as the incremental fold, so the fold of any event order equals this.

    The windowed kinds come from sparse products, not event by event (Online Retail's history has 35
    million event pairs inside the window: an invoice of 500 lines alone has 125,000). A pair's weight
    sqrt(w_a * w_b) * 0.5 ** (dt / half-life) is a product of one factor per event and one per gap, and
    the events of one visit (one actor, one timestamp) share their time. With V the visit x item matrix
    of sqrt(w) and K the visit x visit matrix of what one visit's events give another's (inside a visit,
    a tie: (1 + BACKWARD_FACTOR) / 2 each way; from an earlier visit to a later one inside the window,
    0.5 ** (dt / half-life), and BACKWARD_FACTOR times that back), V.T @ K @ V sums every pair of events.
    Its diagonal (pairs of the same item) is replaced by the popularity."""
    items = np.asarray(items, dtype=np.int64)
    ts = np.asarray(ts, dtype=np.float64)
    codes = actor_codes(actors)
    out = {"shoppers": shoppers_matrix(actors=codes, items=items, n_items=n_items)}
    visit, visit_actor, visit_ts = _visits(codes=codes, ts=ts)
    first, then = _visit_pairs(actor=visit_actor, t=visit_ts)
    n_visits = len(visit_ts)
    decay = np.power(0.5, (visit_ts[then] - visit_ts[first]) / HALF_LIFE_SECONDS)
    own = np.arange(n_visits)
    k = sparse.csr_matrix(
        (
            np.concatenate(
                [np.full(n_visits, (1.0 + BACKWARD_FACTOR) / 2.0), decay, decay * BACKWARD_FACTOR]
            ),
            (np.concatenate([own, first, then]), np.concatenate([own, then, first])),
        ),
        shape=(n_visits, n_visits),
    )
    w, bought = _weights_vector(event_types)
    for kind in WINDOWED_KINDS:
        counts = (w > 0) & bought if kind == "bought" else w > 0
        v = sparse.csr_matrix((np.sqrt(w[counts]), (visit[counts], items[counts])), shape=(n_visits, n_items))
        v.sum_duplicates()
        m = (v.T.tocsr() @ (k @ v)).tocsr()
        m.sum_duplicates()  # sorts each row's columns (the pruning breaks ties by column)
        # the diagonal's structure is exactly the items with popularity (an item with a counted event)
        rows = np.repeat(np.arange(n_items), np.diff(m.indptr))
        on_diagonal = rows == m.indices
        pop = item_popularity(kind=kind, items=items, event_types=event_types, n_items=n_items)
        m.data[on_diagonal] = pop[rows[on_diagonal]]
        m.eliminate_zeros()
        out[kind] = m
    return out


def covisitation_popularity(raw: sparse.csr_matrix) -> np.ndarray:
    """The per-item popularity stored on a raw matrix's diagonal."""
    return np.asarray(raw.diagonal(), dtype=np.float64)


def covisitation_normalise(raw: sparse.csr_matrix, popularity: np.ndarray) -> sparse.csr_matrix:
    """Scores from raw weights: raw(a, b) / (pop(a) ** ANCHOR_EXPONENT * pop(b) ** NEIGHBOUR_EXPONENT),
    the diagonal dropped. The selector (covisitation_neighbours) computes the same in SQL."""
    pop = np.maximum(np.asarray(popularity, dtype=np.float64), 1e-12)
    m = raw.tocsr(copy=True)
    m.setdiag(0)
    m.eliminate_zeros()
    rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
    m.data = m.data / (pop[rows] ** ANCHOR_EXPONENT * pop[m.indices] ** NEIGHBOUR_EXPONENT)
    return m


# --- storage: recommendations_covisitationpair (compacted) + recommendations_covisitationdelta (appended)
#
# Exactly once: an event is folded in the transaction that flips its `covisitation_folded`, and each
# pair of events is counted by whichever of the two is folded second (it pairs with the actor's events
# already folded, itself included). Two workers folding events of the same actor would each miss the
# other's uncommitted event, so the fold takes a per-actor advisory lock (in actor order: no deadlock)
# before it claims. Compaction and rebuild rewrite the tables: they take LOCK_KEY exclusively, folds
# share it.

LOCK_KEY = 0x434F5649  # "COVI"
ACTOR_LOCK_CLASS = 0x434F5641  # "COVA", with hashtext(actor) as the second key
# Events per fold round: a round is one transaction (claim, read partners, append deltas).
FOLD_BATCH_SIZE = 1000
# Compaction keeps each item's best neighbours per kind (by normalised score) and drops weights below
# MIN_WEIGHT (float dust: the smallest single pair inside the window, two views 7 days apart counted
# backward, is 0.002). The answers use at most a few dozen neighbours per
# anchor (limit <= 100, filtered), so 200 leaves room for the hard filters; it bounds an anchor's rows,
# which the selector reads whole. The last_visit source sums whole rows, and there 200 costs: validation
# NDCG@10 at 14 d / 3 d, 200 vs 1,000 per item vs uncompacted, 0.0180 / 0.0204 / 0.0209 (leave-one-out) and
# 0.0462 / 0.0521 / 0.0540 (temporal), for 4.5x the rows (0.75 M -> 3.4 M on Online Retail's 3,911 items).
# Kept at 200 until the read's latency at 1,000 is measured.
KEEP_NEIGHBOURS = 200
# "shoppers" rows are summed whole for the newest visit (`last_visit`), and there compaction costs: its
# validation NDCG@10 at 200 / 500 / 1,000 / every neighbour kept is 0.0231 / 0.0250 / 0.0260 / 0.0261
# (leave-one-out) and 0.0593 / 0.0621 / 0.0651 / 0.0655 (temporal; bench/covisitation.py --sweep-windows
# 7:1 --keep 200 500 1000 100000). But the summed read grows with the rows: on Online Retail (visits of
# 15 items median, load average 11) 60-74 ms median at 200 per item, 160-181 ms at 1,000. It stays at 200
# until that read is cheaper (or served from the pre-computed candidates).
MIN_WEIGHT = 1e-3

_PAIR = "recommendations_covisitationpair"
_DELTA = "recommendations_covisitationdelta"
_ACTOR_SQL = "COALESCE(e.user_id, 's:' || e.session_id)"
_HAS_ACTOR_SQL = "(e.user_id IS NOT NULL OR e.session_id <> '')"


def _pair_rows(
    *, actors: np.ndarray, items: np.ndarray, ts: np.ndarray, event_types: np.ndarray, new: np.ndarray
) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The increments of the `new` events (bool mask) against all the given events of their actors:
    pairs with at least one new end, and the new events' popularity; items are item pks."""
    pks, local = np.unique(np.asarray(items, dtype=np.int64), return_inverse=True)
    left, right = event_pairs(actors=actors, ts=ts)
    involved = new[left] | new[right]
    left, right = left[involved], right[involved]
    out = {}
    for kind in WINDOWED_KINDS:
        rows, cols, vals = pair_contributions(
            kind=kind, items=local, ts=ts, event_types=event_types, left=left, right=right
        )
        pop = item_popularity(kind=kind, items=local[new], event_types=event_types[new], n_items=len(pks))
        diag = np.flatnonzero(pop > 0)
        m = sparse.coo_matrix(
            (np.concatenate([vals, pop[diag]]), (np.concatenate([rows, diag]), np.concatenate([cols, diag]))),
            shape=(len(pks), len(pks)),
        ).tocsr()
        m.sum_duplicates()
        m = m.tocoo()
        out[kind] = (pks[m.row], pks[m.col], m.data)
    return out


_CLAIM_SQL = f"""
UPDATE interactions_event e SET covisitation_folded = true
WHERE e.id = ANY(%(ids)s) AND NOT e.covisitation_folded AND e.item_id IS NOT NULL
RETURNING e.id, {_ACTOR_SQL}, {_HAS_ACTOR_SQL}, extract(epoch FROM e.timestamp)::float8, e.item_id
"""

# "shoppers": the distinct items each actor had before this round (folded, not claimed now), all time.
_PRIOR_ITEMS_SQL = """
SELECT w.actor, x.item_id
FROM unnest(%(users)s::varchar[]) AS w(actor)
CROSS JOIN LATERAL (
    SELECT DISTINCT e.item_id FROM interactions_event e
    WHERE e.user_id = w.actor AND e.covisitation_folded AND e.item_id IS NOT NULL AND e.id <> ALL(%(claimed)s)
) x
UNION ALL
SELECT 's:' || w.session, x.item_id
FROM unnest(%(sessions)s::varchar[]) AS w(session)
CROSS JOIN LATERAL (
    SELECT DISTINCT e.item_id FROM interactions_event e
    WHERE e.user_id IS NULL AND e.session_id = w.session AND e.covisitation_folded
      AND e.item_id IS NOT NULL AND e.id <> ALL(%(claimed)s)
) x
"""


def _shoppers_rows(
    *, prior: dict[str, set[int]], claimed: dict[str, set[int]]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The "shoppers" increments of one round: for each actor, every item new to them counts the actor
    once (the diagonal) and pairs once with each item they had before and with each other new item, both
    directions. An item the actor already had adds nothing: each actor counts once per pair, in any order
    of folding."""
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    for actor, items in claimed.items():
        had = prior.get(actor, set())
        new = np.array(sorted(items - had), dtype=np.int64)
        if not new.size:
            continue
        old = np.array(sorted(had), dtype=np.int64)
        # new x new (the diagonal included: each new item's own count) and new x old, both directions
        rows += [np.repeat(new, new.size), np.repeat(new, old.size), np.tile(old, new.size)]
        cols += [np.tile(new, new.size), np.tile(old, new.size), np.repeat(new, old.size)]
    if not rows:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0, dtype=np.float64)
    r, c = np.concatenate(rows), np.concatenate(cols)
    return r, c, np.ones(len(r), dtype=np.float64)


# The actors' folded events within the window of the claimed ones (the claimed included: this
# transaction sees its own claim). One index range scan per actor (event_user_recent, event_session_recent).
_PARTNERS_SQL = """
SELECT x.id, w.actor, x.item_id, x.event_type, extract(epoch FROM x.timestamp)::float8
FROM unnest(%(users)s::varchar[], %(ulo)s::float8[], %(uhi)s::float8[]) AS w(actor, lo, hi)
CROSS JOIN LATERAL (
    SELECT e.id, e.item_id, e.event_type, e.timestamp FROM interactions_event e
    WHERE e.user_id = w.actor AND e.covisitation_folded AND e.item_id IS NOT NULL
      AND e.timestamp BETWEEN to_timestamp(w.lo) AND to_timestamp(w.hi)
) x
UNION ALL
SELECT x.id, 's:' || w.session, x.item_id, x.event_type, extract(epoch FROM x.timestamp)::float8
FROM unnest(%(sessions)s::varchar[], %(slo)s::float8[], %(shi)s::float8[]) AS w(session, lo, hi)
CROSS JOIN LATERAL (
    SELECT e.id, e.item_id, e.event_type, e.timestamp FROM interactions_event e
    WHERE e.user_id IS NULL AND e.session_id = w.session AND e.covisitation_folded
      AND e.item_id IS NOT NULL AND e.timestamp BETWEEN to_timestamp(w.lo) AND to_timestamp(w.hi)
) x
"""


def _fold_round(*, event_pks: list[int] | None, limit: int) -> int:
    with transaction.atomic(), connection.cursor() as cur:
        if event_pks is None:
            cur.execute(
                "SELECT id FROM interactions_event WHERE NOT covisitation_folded AND item_id IS NOT NULL "
                "ORDER BY id LIMIT %s",
                [limit],
            )
            ids = [r[0] for r in cur.fetchall()]
        else:
            ids = list(event_pks)[:limit]
        if not ids:
            return 0
        cur.execute("SELECT pg_advisory_xact_lock_shared(%s)", [LOCK_KEY])
        cur.execute(
            f"SELECT DISTINCT {_ACTOR_SQL} FROM interactions_event e WHERE e.id = ANY(%s) "
            f"AND NOT e.covisitation_folded AND e.item_id IS NOT NULL AND {_HAS_ACTOR_SQL}",
            [ids],
        )
        for (actor,) in sorted(cur.fetchall()):
            cur.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", [ACTOR_LOCK_CLASS, actor])
        cur.execute(_CLAIM_SQL, {"ids": ids})
        claimed = cur.fetchall()
        bounds: dict[str, list[float]] = {}
        claimed_items: dict[str, set[int]] = {}
        for _pk, actor, has_actor, t, item in claimed:
            if has_actor:
                lo_hi = bounds.setdefault(actor, [t, t])
                lo_hi[0], lo_hi[1] = min(lo_hi[0], t), max(lo_hi[1], t)
                claimed_items.setdefault(actor, set()).add(int(item))
        if not bounds:
            return len(claimed)
        users = [a for a in bounds if not a.startswith("s:")]
        sessions = [a for a in bounds if a.startswith("s:")]
        # a second of slack: to_timestamp() of a float may round off the last microsecond; the pair
        # rules apply the window exactly
        cur.execute(
            _PARTNERS_SQL,
            {
                "users": users,
                "ulo": [bounds[a][0] - WINDOW_SECONDS - 1 for a in users],
                "uhi": [bounds[a][1] + WINDOW_SECONDS + 1 for a in users],
                "sessions": [a[2:] for a in sessions],
                "slo": [bounds[a][0] - WINDOW_SECONDS - 1 for a in sessions],
                "shi": [bounds[a][1] + WINDOW_SECONDS + 1 for a in sessions],
            },
        )
        rows = cur.fetchall()
        claimed_pks = {r[0] for r in claimed}
        cur.execute(
            _PRIOR_ITEMS_SQL,
            {"users": users, "sessions": [a[2:] for a in sessions], "claimed": sorted(claimed_pks)},
        )
        prior: dict[str, set[int]] = {}
        for actor, item in cur.fetchall():
            prior.setdefault(actor, set()).add(int(item))
        increments = _pair_rows(
            actors=np.array([r[1] for r in rows], dtype=object),
            items=np.array([r[2] for r in rows], dtype=np.int64),
            ts=np.array([r[4] for r in rows], dtype=np.float64),
            event_types=np.array([r[3] for r in rows], dtype=object),
            new=np.array([r[0] in claimed_pks for r in rows], dtype=bool),
        )
        increments["shoppers"] = _shoppers_rows(prior=prior, claimed=claimed_items)
        _append(cur, table=_DELTA, increments=increments)
        return len(claimed)


def _append(cur, *, table: str, increments: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]) -> None:
    kinds, a, b, w = [], [], [], []
    for kind, (rows, cols, vals) in increments.items():
        kinds += [kind] * len(rows)
        a += rows.tolist()
        b += cols.tolist()
        w += vals.tolist()
    if kinds:
        cur.execute(
            f"INSERT INTO {table} (kind, item_a, item_b, weight) "
            "SELECT * FROM unnest(%s::varchar[], %s::bigint[], %s::bigint[], %s::float8[])",
            [kinds, a, b, w],
        )


def covisitation_fold(*, event_pks: list[int]) -> int:
    """Fold these events (those not folded yet and linked to an item) into co-visitation, exactly once
    each; returns how many were claimed. Rounds of FOLD_BATCH_SIZE, one transaction each."""
    pks = list(event_pks)
    total = 0
    for start in range(0, len(pks), FOLD_BATCH_SIZE):
        total += _fold_round(event_pks=pks[start : start + FOLD_BATCH_SIZE], limit=FOLD_BATCH_SIZE)
    return total


def covisitation_fold_pending(*, limit: int = FOLD_BATCH_SIZE) -> int:
    """One round of the sweep: fold up to `limit` events nobody folded (lost tasks, events stored while
    the broker was down, events linked to their item late)."""
    return _fold_round(event_pks=None, limit=limit)


@dataclass
class CompactResult:
    merged: int = 0  # delta rows merged
    pruned: int = 0  # pairs dropped


_PRUNE_SQL = f"""
WITH ranked AS (
    SELECT p.kind, p.item_a, p.item_b, p.weight,
           row_number() OVER (
               PARTITION BY p.kind, p.item_a
               ORDER BY p.weight / power(GREATEST(COALESCE(d.weight, 0), 1e-12), %(ne)s) DESC, p.item_b
           ) AS rank
    FROM {_PAIR} p
    LEFT JOIN {_PAIR} d ON d.kind = p.kind AND d.item_a = p.item_b AND d.item_b = p.item_b
    WHERE p.item_a <> p.item_b {{anchors}}
)
DELETE FROM {_PAIR} p USING ranked r
WHERE p.kind = r.kind AND p.item_a = r.item_a AND p.item_b = r.item_b
  AND (r.rank > %(keep)s OR r.weight < %(min_weight)s)
"""


def _prune(cur, *, anchors: list[tuple[str, int]] | None) -> int:
    """Keep each anchor's KEEP_NEIGHBOURS best neighbours, drop weights under MIN_WEIGHT (the popularity
    rows stay). `anchors` None: every anchor."""
    params: dict = {"ne": NEIGHBOUR_EXPONENT, "keep": KEEP_NEIGHBOURS, "min_weight": MIN_WEIGHT}
    where = ""
    if anchors is not None:
        if not anchors:
            return 0
        where = "AND (p.kind, p.item_a) IN (SELECT * FROM unnest(%(kinds)s::varchar[], %(items)s::bigint[]))"
        params["kinds"] = [k for k, _ in anchors]
        params["items"] = [a for _, a in anchors]
    cur.execute(_PRUNE_SQL.format(anchors=where), params)
    return cur.rowcount


def covisitation_compact() -> CompactResult:
    """Merge the appended increments into the compacted table, then prune the anchors they touched.
    Holds LOCK_KEY exclusively (folds wait, a few hundred ms per 100k delta rows); readers are never
    blocked and see the sum either side of the commit."""
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_KEY])
        cur.execute(f"SELECT count(*) FROM {_DELTA}")
        merged = cur.fetchone()[0]
        if not merged:
            return CompactResult()
        cur.execute(
            f"""
            INSERT INTO {_PAIR} AS p (kind, item_a, item_b, weight)
            SELECT kind, item_a, item_b, sum(weight) FROM {_DELTA} GROUP BY kind, item_a, item_b
            ON CONFLICT (kind, item_a, item_b)
            DO UPDATE SET weight = p.weight + EXCLUDED.weight, updated_at = now()
            """
        )
        cur.execute(f"SELECT DISTINCT kind, item_a FROM {_DELTA}")
        anchors = cur.fetchall()
        # every row is merged: nothing appends while the exclusive lock is held
        cur.execute(f"DELETE FROM {_DELTA}")
        pruned = _prune(cur, anchors=anchors)
    return CompactResult(merged=merged, pruned=pruned)


def covisitation_pruned(raw: sparse.csr_matrix) -> sparse.coo_matrix:
    """A raw matrix as compaction leaves it: each row's best neighbours by normalised score (ties by the
    smaller index, as `_PRUNE_SQL` orders them; KEEP_NEIGHBOURS per row), weights under
    MIN_WEIGHT dropped, the popularity diagonal kept. Pruning before writing spares a rebuild the rows
    it would delete (tens of millions on a big history). Only rows longer than KEEP_NEIGHBOURS are
    sorted, each on its own: one sort of every entry by (row, score, column) took 10 times longer."""
    m = raw.tocsr()
    if not m.has_canonical_format:
        m = m.copy()
        m.sum_duplicates()  # columns in order within each row: the ties below rely on it
    pop = np.maximum(covisitation_popularity(m), 1e-12)
    rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
    diag = (rows == m.indices) & (m.data > 0)
    off = (rows != m.indices) & (m.data >= MIN_WEIGHT)
    score = m.data / pop[m.indices] ** NEIGHBOUR_EXPONENT
    keep = off.copy()
    for r in np.flatnonzero(np.bincount(rows[off], minlength=m.shape[0]) > KEEP_NEIGHBOURS):
        lo, hi = m.indptr[r], m.indptr[r + 1]
        offered = lo + np.flatnonzero(off[lo:hi])  # by column
        best = offered[np.argsort(-score[offered], kind="stable")[:KEEP_NEIGHBOURS]]
        keep[offered] = False
        keep[best] = True
    selected = keep | diag
    return sparse.coo_matrix((m.data[selected], (rows[selected], m.indices[selected])), shape=m.shape)


# PostgreSQL's binary COPY: a signature, flags and header-extension length, then per row the field count
# and each field as (length, big-endian value), then -1.
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + np.array([0, 0], dtype=">i4").tobytes()
_COPY_TRAILER = np.array([-1], dtype=">i2").tobytes()
# Rows per write of a rebuild's COPY (47 bytes each: 4.7 MB).
COPY_BATCH = 100_000


def _copy_rows(kind: str, a: np.ndarray, b: np.ndarray, w: np.ndarray) -> bytes:
    """(kind, item_a, item_b, weight) rows in binary COPY format, built as one numpy record array: a row
    at a time through psycopg's write_row took 10 s for Online Retail's 2.3 million rows."""
    label = kind.encode()
    rows = np.empty(
        len(a),
        dtype=np.dtype(
            [("fields", ">i2"), ("kind_len", ">i4"), ("kind", f"S{len(label)}"), ("a_len", ">i4"),
             ("a", ">i8"), ("b_len", ">i4"), ("b", ">i8"), ("w_len", ">i4"), ("w", ">f8")]
        ),
    )  # fmt: skip
    rows["fields"], rows["kind_len"], rows["kind"] = 4, len(label), label
    rows["a_len"], rows["a"], rows["b_len"], rows["b"], rows["w_len"], rows["w"] = 8, a, 8, b, 8, w
    return rows.tobytes()


def covisitation_replace(*, matrices: dict[str, sparse.csr_matrix], item_pks: np.ndarray) -> int:
    """Replace everything stored with these raw matrices (rows/columns are indices into `item_pks`),
    pruned like a compaction (`covisitation_pruned`); returns the rows written. Offline evaluation calls
    it inside a transaction it rolls back, to serve from training data only. Holds LOCK_KEY
    exclusively."""
    item_pks = np.asarray(item_pks, dtype=np.int64)
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_KEY])
        cur.execute(f"DELETE FROM {_DELTA}")
        cur.execute(f"DELETE FROM {_PAIR}")
        written = 0
        with cur.copy(f"COPY {_PAIR} (kind, item_a, item_b, weight) FROM STDIN (FORMAT BINARY)") as copy:
            copy.write(_COPY_HEADER)
            for kind, raw in matrices.items():
                m = covisitation_pruned(raw)
                for lo in range(0, m.nnz, COPY_BATCH):
                    part = slice(lo, lo + COPY_BATCH)
                    copy.write(_copy_rows(kind, item_pks[m.row[part]], item_pks[m.col[part]], m.data[part]))
                written += int(m.nnz)
            copy.write(_COPY_TRAILER)
    return written


def covisitation_events_load() -> dict[str, np.ndarray]:
    """Every event that co-visitation counts (linked to an item, with a user or session), as arrays:
    actors, item pks, ts (epoch seconds), event_types."""
    with connection.cursor() as cur:
        cur.execute(
            f"SELECT {_ACTOR_SQL}, e.item_id, extract(epoch FROM e.timestamp)::float8, e.event_type "
            f"FROM interactions_event e WHERE e.item_id IS NOT NULL AND {_HAS_ACTOR_SQL}"
        )
        rows = cur.fetchall()
    return {
        "actors": np.array([r[0] for r in rows], dtype=object),
        "items": np.array([r[1] for r in rows], dtype=np.int64),
        "ts": np.array([r[2] for r in rows], dtype=np.float64),
        "event_types": np.array([r[3] for r in rows], dtype=object),
    }


def covisitation_rebuild() -> int:
    """Recompute everything from the events table and mark every event folded, in one transaction that
    holds LOCK_KEY exclusively (folds wait for it); returns the rows written."""
    with transaction.atomic():
        with connection.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_KEY])
            cur.execute(
                "UPDATE interactions_event SET covisitation_folded = true "
                "WHERE NOT covisitation_folded AND item_id IS NOT NULL"
            )
        events = covisitation_events_load()
        item_pks, local = np.unique(events["items"], return_inverse=True)
        matrices = covisitation_matrices(
            actors=events["actors"],
            items=local,
            ts=events["ts"],
            event_types=events["event_types"],
            n_items=len(item_pks),
        )
        return covisitation_replace(matrices=matrices, item_pks=item_pks)


# --- reads
#
# One statement per kind reads the raw material (`_ROWS_SQL`): each (anchor, neighbour) weight, compacted
# plus pending increments, of the neighbours that pass the hard filters, and the popularity of those
# neighbours (and of anchors that are another anchor's neighbour, for the anchor's own exponent), as one
# row of binary arrays. numpy computes the scores, each anchor's top k and the sums over anchors
# (`_scored`, `_top_per_anchor`, `_summed_top`) with the same operations, in the same order, as the SQL
# that did it before (a test checks them equal to the bit against it): in Postgres the scoring, the window
# and the grouped sums over the ~3,000-10,000 rows of a visit were three quarters of the read's time, and
# on a loaded 2-core box a request's database CPU is what it waits for (bench/ranked_latency.py).
#
# The hard filters are checked once per distinct neighbour (`ok`), not once per (anchor, neighbour) row,
# and popularity is read only for neighbours that pass them, with one index-only scan of
# `covisit_pair_popularity` (an array, not a join: ~1 ms instead of ~11 ms for 500 neighbours). The anchors
# and the excluded items (a wholesaler's history: hundreds) are one hashed NOT IN, not `<> ALL(array)`,
# which compares each of the ~900 neighbours of a visit with every element in turn (~10 of the read's
# ~13 ms of execution with a long history).
_ROWS_SQL = f"""
WITH w AS (
    SELECT u.item_a, u.item_b, sum(u.weight) AS weight FROM (
        SELECT item_a, item_b, weight FROM {_PAIR} WHERE kind = %(kind)s AND item_a = ANY(%(anchors)s)
        UNION ALL
        SELECT item_a, item_b, weight FROM {_DELTA} WHERE kind = %(kind)s AND item_a = ANY(%(anchors)s)
    ) u GROUP BY u.item_a, u.item_b
),
ok AS (
    SELECT i.id FROM catalog_item i
    WHERE i.id IN (SELECT item_b FROM w) AND i.id NOT IN (SELECT unnest(%(excluded)s::bigint[]))
      AND {{where}}
),
needed AS (
    SELECT id AS item FROM ok
    UNION
    SELECT item_b FROM w WHERE item_b = ANY(%(anchors)s)
),
pop AS (
    SELECT u.item, sum(u.weight) AS pop FROM (
        SELECT item_a AS item, weight FROM {_PAIR}
        WHERE kind = %(kind)s AND item_a = item_b AND item_a = ANY(ARRAY(SELECT item FROM needed))
        UNION ALL
        SELECT item_a, weight FROM {_DELTA}
        WHERE kind = %(kind)s AND item_a = item_b AND item_a = ANY(ARRAY(SELECT item FROM needed))
    ) u GROUP BY u.item
)
SELECT r.a, r.b, r.w, p.items, p.pops
FROM (
    SELECT string_agg(int8send(w.item_a), '') AS a, string_agg(int8send(w.item_b), '') AS b,
           string_agg(float8send(w.weight), '') AS w
    FROM w JOIN ok ON ok.id = w.item_b
) r, (
    SELECT string_agg(int8send(item), '') AS items, string_agg(float8send(pop), '') AS pops FROM pop
) p
"""


@dataclass
class _Scored:
    """The (anchor, neighbour, score) rows of one read, score = weight / (pop(anchor) ** ANCHOR_EXPONENT *
    pop(neighbour) ** NEIGHBOUR_EXPONENT), in no particular order."""

    a: np.ndarray  # int64
    b: np.ndarray  # int64
    score: np.ndarray  # float64


def _int8s(data: bytes | None) -> np.ndarray:
    return np.frombuffer(data, dtype=">i8").astype(np.int64) if data else np.zeros(0, dtype=np.int64)


def _float8s(data: bytes | None) -> np.ndarray:
    return np.frombuffer(data, dtype=">f8").astype(np.float64) if data else np.zeros(0, dtype=np.float64)


def _scored(rows: list[tuple]) -> _Scored:
    """The scores of `_ROWS_SQL`'s row, as the SQL computed them: weight / (power(GREATEST(COALESCE(
    pop(a), 0), 1e-12), ae) * power(GREATEST(COALESCE(pop(b), 0), 1e-12), ne)). The power is the C
    library's `pow` on each distinct item's popularity, as Postgres's `power()` calls it (numpy's own
    vectorised power may differ in the last bit), then IEEE products and quotients like float8's."""
    import math

    ((a, b, w, items, pops),) = rows
    a, b, w = _int8s(a), _int8s(b), _float8s(w)
    items, pops = _int8s(items), _float8s(pops)

    def term(keys: np.ndarray, exponent: float) -> np.ndarray:
        if exponent == 0.0:  # pow(x, 0) is 1 for every x (C99 F.9.4.4): the anchor's term, by default
            return np.ones(len(keys), dtype=np.float64)
        known = np.array([math.pow(max(p, 1e-12), exponent) for p in pops.tolist()], dtype=np.float64)
        out = np.full(len(keys), math.pow(1e-12, exponent), dtype=np.float64)  # no popularity row
        if len(items) and len(keys):
            order = np.argsort(items, kind="stable")
            at = np.minimum(np.searchsorted(items, keys, sorter=order), len(items) - 1)
            found = items[order[at]] == keys
            out[found] = known[order[at[found]]]
        return out

    score = w / (term(a, ANCHOR_EXPONENT) * term(b, NEIGHBOUR_EXPONENT))
    return _Scored(a=a, b=b, score=score)


def _top_per_anchor(scored: _Scored, *, anchors: list[int], k: int) -> dict[int, dict[int, float]]:
    """Each anchor's best k neighbours by score (ties by the smaller neighbour), best first."""
    out: dict[int, dict[int, float]] = {pk: {} for pk in anchors}
    if not len(scored.a):
        return out
    order = np.lexsort((scored.b, -scored.score, scored.a))
    a, b, s = scored.a[order], scored.b[order], scored.score[order]
    first = np.ones(len(a), dtype=bool)
    first[1:] = a[1:] != a[:-1]
    starts = np.flatnonzero(first)
    rank = np.arange(len(a)) - np.repeat(starts, np.diff(np.append(starts, len(a))))
    keep = rank < k
    for anchor, neighbour, score in zip(a[keep].tolist(), b[keep].tolist(), s[keep].tolist(), strict=True):
        out[anchor][neighbour] = score
    return out


def _summed_top(scored: _Scored, *, k: int) -> dict[int, tuple[float, int, int]]:
    """neighbour -> (its scores summed over the anchors, how many anchors, the anchor that gave the most),
    the best k by sum (ties by the smaller neighbour), best first. Each sum adds the scores one at a time,
    largest first (ties by the smaller anchor), as Postgres's sum() did over its input sorted that way: the
    same additions in the same order give the same sum to the bit."""
    if not len(scored.a) or k <= 0:
        return {}
    order = np.lexsort((scored.a, -scored.score, scored.b))
    a, b, s = scored.a[order], scored.b[order], scored.score[order]
    first = np.ones(len(b), dtype=bool)
    first[1:] = b[1:] != b[:-1]
    starts = np.flatnonzero(first)
    hits = np.diff(np.append(starts, len(b)))
    total = s[starts].copy()
    for j in range(1, int(hits.max())):
        more = hits > j
        total[more] += s[starts[more] + j]
    best = np.lexsort((b[starts], -total))[:k]
    return {
        int(n): (float(t), int(h), int(top))
        for n, t, h, top in zip(
            b[starts][best].tolist(),
            total[best].tolist(),
            hits[best].tolist(),
            a[starts][best].tolist(),
            strict=True,
        )
    }


def _rows_read(
    *, item_pks: Sequence[int], kind: str, filters: HardFilters | None, parse
) -> tuple[Read, list[int]]:
    from recommendations.retrieval.pgvector_backend import filters_where

    if kind not in KINDS:
        raise ValueError(f"unknown co-visitation kind {kind!r}; one of {', '.join(KINDS)}")
    anchors = sorted({int(pk) for pk in item_pks})
    excluded = set(anchors)
    if filters is None:
        where, params = "i.is_active", {}
    else:
        excluded |= filters.exclude_item_pks
        where, params = filters_where(replace(filters, exclude_item_pks=frozenset()), require_vector=False)
    params |= {"kind": kind, "anchors": anchors, "excluded": _pk_array(excluded)}
    return Read(_ROWS_SQL.format(where=where), params, parse), anchors


def _pk_array(pks) -> str:
    """A bigint[] parameter in Postgres's text form (psycopg's list dumper inspects every element)."""
    return "{" + ",".join(str(int(pk)) for pk in sorted(pks)) + "}"


def covisitation_neighbours(
    *, item_pks: Sequence[int], kind: str, k: int, filters: HardFilters | None = None
) -> dict[int, dict[int, float]]:
    """Each anchor's top-k neighbours of `kind` by normalised score (`covisitation_normalise`: compacted
    weights plus pending increments), best first, in one query. The anchors themselves never appear;
    `filters` (active items only when None) apply inside the query. Anchors without co-visitation get an
    empty dict."""
    read = covisitation_neighbours_read(item_pks=item_pks, kind=kind, k=k, filters=filters)
    if read.sql is None:
        return read.parse([])
    with read_connection().cursor() as cur:
        cur.execute(read.sql, read.params)
        return read.parse(cur.fetchall())


def covisitation_neighbours_read(
    *, item_pks: Sequence[int], kind: str, k: int, filters: HardFilters | None = None
) -> Read:
    """`covisitation_neighbours` as a `Read`."""
    anchors = sorted({int(pk) for pk in item_pks})

    def parse(rows: list[tuple]) -> dict[int, dict[int, float]]:
        if not rows:
            return {pk: {} for pk in anchors}
        return _top_per_anchor(_scored(rows), anchors=anchors, k=k)

    read, _ = _rows_read(item_pks=anchors, kind=kind, filters=filters, parse=parse)
    if not anchors or k <= 0:
        return Read(None, {}, parse)
    return read


def covisitation_summed(
    *, item_pks: Sequence[int], kind: str, k: int, filters: HardFilters | None = None
) -> dict[int, tuple[float, int, int]]:
    """neighbour -> (its scores summed over every anchor's whole row, how many anchors, the anchor that
    gave it the most), the best k by sum, in one query; anchors never appear; `filters` inside. The whole
    rows, not each anchor's top k: the many small contributions of a basket's lines are what ranks its
    best complement first."""
    read = covisitation_summed_read(item_pks=item_pks, kind=kind, k=k, filters=filters)
    if read.sql is None:
        return read.parse([])
    with read_connection().cursor() as cur:
        cur.execute(read.sql, read.params)
        return read.parse(cur.fetchall())


def covisitation_summed_read(
    *, item_pks: Sequence[int], kind: str, k: int, filters: HardFilters | None = None
) -> Read:
    """`covisitation_summed` as a `Read`."""

    def parse(rows: list[tuple]) -> dict[int, tuple[float, int, int]]:
        return _summed_top(_scored(rows), k=k) if rows else {}

    read, anchors = _rows_read(item_pks=item_pks, kind=kind, filters=filters, parse=parse)
    if not anchors or k <= 0:
        return Read(None, {}, parse)
    return read

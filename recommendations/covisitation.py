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
divides by. The database keeps exactly these numbers (recommendations/covisitation_store.py) and folds
each new event in with the same rules; `covisitation_matrices` is the full recompute it must equal.
"""

from __future__ import annotations

import numpy as np
from django.conf import settings
from scipy import sparse

KINDS = ("bought", "viewed")
BOUGHT_EVENT_TYPES = frozenset({"add_to_cart", "purchase"})

# Chosen on the leave-one-out validation item of Online Retail (bench/covisitation.py, README "Bought
# together"): pairs more than 30 days apart count nothing, and a pair's weight halves every 7 days of gap.
# Online Retail is invoices (all lines of one invoice share a timestamp), so these mostly weigh repeat
# orders of the same customer; a live shop's sessions sit well inside both.
WINDOW_SECONDS = 30 * 86400.0
HALF_LIFE_SECONDS = 7 * 86400.0
# The reverse direction (B bought after A, read as "A with B") counts this fraction of the forward one.
BACKWARD_FACTOR = 0.5
# score(a -> b) = raw(a, b) / (pop(a) ** ANCHOR_EXPONENT * pop(b) ** NEIGHBOUR_EXPONENT): the neighbour's
# popularity damps best-sellers that co-visit with everything; the anchor's evens out how much each item
# of a cart adds to the sum.
NEIGHBOUR_EXPONENT = 0.5
ANCHOR_EXPONENT = 0.5


def _type_weight(event_type: str) -> float:
    return float(settings.RECSYS_EVENT_WEIGHTS.get(event_type, 0.0))


def event_counts_in(*, kind: str, event_type: str) -> bool:
    """Whether an event of this type takes part in pairs (and popularity) of this kind."""
    if kind not in KINDS:
        raise ValueError(f"unknown co-visitation kind {kind!r}; one of {', '.join(KINDS)}")
    return kind == "viewed" or event_type in BOUGHT_EVENT_TYPES


def pair_weight(*, kind: str, type_a: str, type_b: str, dt_seconds: float) -> float:
    """The contribution of one ordered pair (a at t, then b at t + dt, dt >= 0) to the directed weight
    a -> b. Zero when either event does not count in `kind` or the gap exceeds the window."""
    if dt_seconds < 0:
        raise ValueError("dt_seconds must be >= 0 (a happens first)")
    if not (event_counts_in(kind=kind, event_type=type_a) and event_counts_in(kind=kind, event_type=type_b)):
        return 0.0
    if dt_seconds > WINDOW_SECONDS:
        return 0.0
    return float(
        np.sqrt(_type_weight(type_a) * _type_weight(type_b)) * 0.5 ** (dt_seconds / HALF_LIFE_SECONDS)
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
    w = np.array([_type_weight(t) for t in types], dtype=np.float64)[codes]
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
    a, t = actor_codes[order], np.asarray(ts, dtype=np.float64)[order]
    left, right = [], []
    live = np.arange(n - 1)
    offset = 1
    while live.size:
        partner = live + offset
        inside = partner < n
        live, partner = live[inside], partner[inside]
        near = (a[partner] == a[live]) & (t[partner] - t[live] <= WINDOW_SECONDS)
        live, partner = live[near], partner[near]
        left.append(order[live])
        right.append(order[partner])
        offset += 1
    return np.concatenate(left).astype(np.int64), np.concatenate(right).astype(np.int64)


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
        raise ValueError(f"unknown co-visitation kind {kind!r}; one of {', '.join(KINDS)}")
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


def covisitation_matrices(
    *, actors: np.ndarray, items: np.ndarray, ts: np.ndarray, event_types: np.ndarray, n_items: int
) -> dict[str, sparse.csr_matrix]:
    """Raw directed weights per kind (item x item, float64) from event arrays; items are indices
    0..n_items-1, ts epoch seconds. The diagonal holds each item's popularity in that kind. The same
    rules as the incremental fold, so the fold of any event order equals this."""
    left, right = event_pairs(actors=actors, ts=ts)
    out = {}
    for kind in KINDS:
        rows, cols, vals = pair_contributions(
            kind=kind, items=items, ts=ts, event_types=event_types, left=left, right=right
        )
        pop = item_popularity(kind=kind, items=items, event_types=event_types, n_items=n_items)
        diag = np.flatnonzero(pop > 0)
        m = sparse.coo_matrix(
            (np.concatenate([vals, pop[diag]]), (np.concatenate([rows, diag]), np.concatenate([cols, diag]))),
            shape=(n_items, n_items),
        ).tocsr()
        m.sum_duplicates()
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

"""Candidate sources behind one interface: `source(context, *, k, filters) -> {item_pk: score}`, higher
is better, every hard filter inside the source's own query (so a filter never shortens a source's list).

The scenarios gather the union of several sources (`candidates_gather`) and the learned ranker
(`recommendations.ranker`) orders it. Each source is also a method of offline evaluation on its own.

Sources:
- `bought_together` / `viewed_together`: co-visitation neighbours of the most recent items (and of the
  item on an item page), decayed by recency (`recommendations.covisitation`).
- `last_visit`: the "shoppers" co-visitation rows (distinct actors who had both items, any time) of the
  items of the user's newest visit (a session, an invoice: up to VISIT_ANCHORS of them), summed; the rows are already
  divided by the square root of the neighbour's popularity. Its reason is `bought_together` with the visit item that contributed most.
- `content_recent`: content-vector neighbours of each of the few most recent items (not of their mean).
- `user_vector`: content-vector neighbours of the user's stored (or history-built) vector.
- `two_tower`: the two-tower model's own search, when a version is active.
- `trending`: time-decayed popularity.
- `repeat`: the user's own purchases, when the surface's profile lets bought items be shown again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from recommendations import selectors
from recommendations.retrieval import get_backend
from recommendations.retrieval.base import HardFilters

# Chosen with SOURCE_K below on the validation targets (bench/source_k.py, see SOURCE_K).
# The most recent distinct items whose co-visitation rows are read, and their weight decay (newest 1.0).
COVIS_ANCHORS = 3
# The most recent distinct items whose content neighbours are searched (one vector search each).
CONTENT_ANCHORS = 3
ANCHOR_DECAY = 0.7
# The most items of the newest visit whose co-visitation rows `last_visit` sums (selectors.VISIT_ITEMS
# reads up to 50; a visit's median is 15 lines on Online Retail).
VISIT_ANCHORS = 20
# Summed neighbours `last_visit` reads (the features see each candidate's sum among these).
VISIT_K = 500
# The co-visitation kind `last_visit` sums. Validation NDCG@10 (Online Retail, the visit's rows summed,
# bench/covisitation.py --sweep-windows 7:1 --keep 200 500 1000 100000): "shoppers" 0.0231 / 0.0260
# (leave-one-out, 200 / 1,000 neighbours kept per item) and 0.0593 / 0.0651 (temporal), "bought" (7-day
# window, weighted) 0.0161 / 0.0191 and 0.0452 / 0.0519.
VISIT_KIND = "shoppers"
# Candidates each source contributes, and the most the union holds (the ranker's cost is per candidate).
# With COVIS_ANCHORS and VISIT_ANCHORS: the smallest tried that kept the served NDCG@10 (ranker retrained
# on the same candidates, then the default re-ranking) within 1% of the previous 150 / 5 / 50 on the
# validation targets (bench/source_k.py --validation, Online Retail, leave-one-out, seed 0, 600 users,
# ranker on 800): 150 / 5 / 50 0.0288; 75 / 5 / 50 0.0297; 75 / 3 / 20 0.0296; 55 0.0243; 40 0.0260
# (paired 95% intervals about +-0.006: 600 users cannot resolve 1%). With the cheaper co-visitation reads
# the live ranked path's CPU per request fell by a quarter, 49 -> 37 ms (docs/benchmarks.md, "Ranked path
# latency").
SOURCE_K = 75
MAX_CANDIDATES = 500


@dataclass
class SourceContext:
    """What the sources know about the request. `recent` is newest first (distinct items); `anchor` is the
    item of an item page. `memo` holds what several sources and the features share (read once)."""

    recent: tuple[int, ...] = ()
    visit: tuple[int, ...] = ()  # the newest visit's items (empty: the anchors stand for it)
    bought: frozenset[int] = frozenset()
    anchor: int | None = None
    now: datetime | None = None
    vector: np.ndarray | None = None
    two_tower: Any = None  # two_tower.serving.Query or None
    allow_repeat: bool = False
    memo: dict[str, Any] = field(default_factory=dict)

    @property
    def anchors(self) -> tuple[int, ...]:
        """The items co-visitation and content neighbours start from: the page's item, then the newest."""
        if self.anchor is not None:
            return (self.anchor, *[pk for pk in self.recent if pk != self.anchor])
        return self.recent

    @property
    def visit_items(self) -> tuple[int, ...]:
        """The items `last_visit` starts from: the newest visit's, else (a session, an item page, a
        history without times) the anchors, at most VISIT_ANCHORS."""
        items = self.visit or self.anchors
        if self.anchor is not None and self.anchor not in items:
            items = (self.anchor, *items)
        return tuple(items[:VISIT_ANCHORS])

    def visit_scores(self, *, k: int, filters: HardFilters) -> dict[int, tuple[float, int, int]]:
        """neighbour -> (its VISIT_KIND scores summed over the WHOLE rows of the visit's items, how many
        of them it co-visits, the one that gave it the most), the best `VISIT_K` by sum, read once per
        request in one query."""
        if "visit_scores" not in self.memo:
            self.memo["visit_scores"] = _covisitation_summed(
                item_pks=list(self.visit_items), kind=VISIT_KIND, k=max(k, VISIT_K), filters=filters
            )
        return self.memo["visit_scores"]

    def recent_vectors(self) -> dict[int, tuple[str, np.ndarray]]:
        """Content vectors (with shop ids) of the anchors and recent items, read once per request."""
        if "vectors" not in self.memo:
            pks = list(self.anchors[: selectors.EXPLAIN_ITEMS])
            self.memo["vectors"] = selectors.history_vectors(item_pks=pks)
        return self.memo["vectors"]

    def covisitation(self, kind: str, *, k: int, filters: HardFilters) -> dict[int, dict[int, float]]:
        """anchor -> {neighbour: score} for the first COVIS_ANCHORS anchors, read once per kind."""
        key = f"covis:{kind}"
        if key not in self.memo:
            anchors = list(self.anchors[:COVIS_ANCHORS])
            self.memo[key] = _covisitation_neighbours(item_pks=anchors, kind=kind, k=k, filters=filters)
        return self.memo[key]


# Offline evaluation and ranker training may read co-visitation from matrices in memory instead of the
# table (`covisitation_in_memory`); serving always reads the table.
_covisitation_memory: dict[str, Any] = {}


class MatrixNeighbours:
    """Co-visitation neighbours from normalised matrices (item index space) with the same contract as the
    table's selector; hard filters reduced to what offline evaluation uses (active items, exclusions)."""

    def __init__(self, matrices: dict[str, Any], item_pks: np.ndarray, allowed: np.ndarray):
        self.matrices = {kind: m.tocsr() for kind, m in matrices.items()}
        self.item_pks = np.asarray(item_pks, dtype=np.int64)
        self.index = {int(pk): i for i, pk in enumerate(self.item_pks)}
        self.allowed = np.asarray(allowed, dtype=bool)

    def __call__(self, *, item_pks, kind, k, filters) -> dict[int, dict[int, float]]:
        m = self.matrices.get(kind)
        out: dict[int, dict[int, float]] = {}
        if m is None:
            return out
        excluded = filters.exclude_item_pks
        for pk in item_pks:
            i = self.index.get(int(pk))
            if i is None:
                continue
            cols, vals = m.indices[m.indptr[i] : m.indptr[i + 1]], m.data[m.indptr[i] : m.indptr[i + 1]]
            keep = self.allowed[cols]
            cols, vals = cols[keep], vals[keep]
            # only the best k + |excluded| can make the list
            top = k + len(excluded)
            if len(vals) > top:
                part = np.argpartition(-vals, top - 1)[:top]
                cols, vals = cols[part], vals[part]
            order = np.lexsort((self.item_pks[cols], -vals))
            row: dict[int, float] = {}
            for j in order:
                npk = int(self.item_pks[cols[j]])
                if npk in excluded:
                    continue
                row[npk] = float(vals[j])
                if len(row) >= k:
                    break
            if row:
                out[int(pk)] = row
        return out

    def summed(self, *, item_pks, kind, k, filters) -> dict[int, tuple[float, int, int]]:
        """`covisitation.covisitation_summed` from the matrices."""
        m = self.matrices.get(kind)
        idx = sorted({self.index[int(pk)] for pk in item_pks if int(pk) in self.index})
        if m is None or not idx:
            return {}
        rows = m[idx]
        total = np.asarray(rows.sum(axis=0)).ravel()
        hits = np.diff(rows.tocsc().indptr)
        keep = (hits > 0) & self.allowed
        keep[idx] = False
        for pk in filters.exclude_item_pks:
            j = self.index.get(int(pk))
            if j is not None:
                keep[j] = False
        cols = np.flatnonzero(keep)
        if len(cols) > k:
            cols = cols[np.argpartition(-total[cols], k - 1)[:k]]
        cols = cols[np.lexsort((self.item_pks[cols], -total[cols]))]
        dense = rows[:, cols].toarray()
        top = np.array(idx)[np.argmax(dense, axis=0)] if len(cols) else np.zeros(0, np.int64)
        return {
            int(self.item_pks[c]): (float(total[c]), int(hits[c]), int(self.item_pks[a]))
            for c, a in zip(cols, top, strict=True)
        }


def covisitation_in_memory(neighbours: MatrixNeighbours | None) -> None:
    """Read co-visitation from these matrices (None: from the table again). Offline use only."""
    _covisitation_memory.clear()
    if neighbours is not None:
        _covisitation_memory["neighbours"] = neighbours


def _covisitation_neighbours(*, item_pks, kind, k, filters) -> dict[int, dict[int, float]]:
    if not item_pks:
        return {}
    if "neighbours" in _covisitation_memory:
        return _covisitation_memory["neighbours"](item_pks=item_pks, kind=kind, k=k, filters=filters)
    from recommendations.covisitation import covisitation_neighbours

    return covisitation_neighbours(item_pks=item_pks, kind=kind, k=k, filters=filters)


def _covisitation_summed(*, item_pks, kind, k, filters) -> dict[int, tuple[float, int, int]]:
    if not item_pks:
        return {}
    if "neighbours" in _covisitation_memory:
        return _covisitation_memory["neighbours"].summed(item_pks=item_pks, kind=kind, k=k, filters=filters)
    from recommendations.covisitation import covisitation_summed

    return covisitation_summed(item_pks=item_pks, kind=kind, k=k, filters=filters)


def _covis_source(kind: str) -> Callable[..., dict[int, float]]:
    def source(context: SourceContext, *, k: int, filters: HardFilters) -> dict[int, float]:
        rows = context.covisitation(kind, k=k, filters=filters)
        scores: dict[int, float] = {}
        for rank, anchor in enumerate(context.anchors[:COVIS_ANCHORS]):
            weight = ANCHOR_DECAY**rank
            for pk, score in rows.get(anchor, {}).items():
                scores[pk] = scores.get(pk, 0.0) + weight * score
        return _top(scores, k)

    source.__name__ = f"{kind}_together"
    return source


bought_together = _covis_source("bought")
viewed_together = _covis_source("viewed")


def last_visit(context: SourceContext, *, k: int, filters: HardFilters) -> dict[int, float]:
    """The VISIT_KIND co-visitation rows of every item of the newest visit, whole, summed (each score is
    already divided by the square root of the neighbour's popularity): what goes with the whole basket,
    not only with its newest few lines. Validation (Online Retail, leave-one-out, 300 users, "bought"
    rows): the whole rows 0.0216 NDCG@10, each item's top 150 only 0.0156."""
    scores = {pk: total for pk, (total, _, _) in context.visit_scores(k=k, filters=filters).items()}
    return _top(scores, k)


def visit_anchor(context: SourceContext, pk: int) -> int | None:
    """The visit item that gave this neighbour the most (the reason's anchor), if any."""
    found = context.memo.get("visit_scores", {}).get(pk)
    return found[2] if found else None


def _searched(context: SourceContext, key: int | None, vector: np.ndarray, *, k: int, filters: HardFilters):
    """The vector search around `key` (an anchor's pk; None: the user's vector), as `sources_prefetch`
    read it, else now."""
    found = context.memo.get(("search", key, k, filters))
    if found is not None:
        return found
    return get_backend().search(vector=vector, k=k, filters=filters)


def content_recent(context: SourceContext, *, k: int, filters: HardFilters) -> dict[int, float]:
    """Nearest items to each of the newest items with a vector; an item's score is its best decayed
    similarity to any of them."""
    vectors = context.recent_vectors()
    anchors = [pk for pk in context.anchors if pk in vectors][:CONTENT_ANCHORS]
    scores: dict[int, float] = {}
    for rank, pk in enumerate(anchors):
        weight = ANCHOR_DECAY**rank
        for c in _searched(context, pk, vectors[pk][1], k=k, filters=filters):
            s = weight * (1.0 - c.distance)
            if s > scores.get(c.item_pk, -np.inf):
                scores[c.item_pk] = s
    return _top(scores, k)


def user_vector(context: SourceContext, *, k: int, filters: HardFilters) -> dict[int, float]:
    if context.vector is None:
        return {}
    return {
        c.item_pk: 1.0 - c.distance for c in _searched(context, None, context.vector, k=k, filters=filters)
    }


def two_tower(context: SourceContext, *, k: int, filters: HardFilters) -> dict[int, float]:
    if context.two_tower is None:
        return {}
    return context.two_tower.search(k=k, filters=filters)


def trending(context: SourceContext, *, k: int, filters: HardFilters) -> dict[int, float]:
    found = context.memo.get(("trending", k, filters))
    return dict(found) if found is not None else selectors.trending_scores(filters=filters, k=k)


def repeat(context: SourceContext, *, k: int, filters: HardFilters) -> dict[int, float]:
    """The user's own purchases, newest first, where the profile lets bought items be shown again."""
    if not context.allow_repeat:
        return {}
    bought = [pk for pk in context.recent if pk in context.bought and pk not in filters.exclude_item_pks]
    return {pk: 1.0 - rank / max(len(bought), 1) for rank, pk in enumerate(bought[:k])}


SOURCES: dict[str, Callable[..., dict[int, float]]] = {
    "bought_together": bought_together,
    "viewed_together": viewed_together,
    "last_visit": last_visit,
    "content_recent": content_recent,
    "user_vector": user_vector,
    "two_tower": two_tower,
    "trending": trending,
    "repeat": repeat,
}


def sources_prefetch(
    context: SourceContext, *, names: tuple[str, ...], filters: HardFilters, k: int | None = None
) -> None:
    """Read what these sources and the ranker's features (`features.context_features`) will ask for in
    two round trips instead of one per read (nine for the default sources), into `context.memo`: the
    recent items' vectors, co-visitation ("bought", "viewed", the visit's summed rows, unless read from
    matrices in memory), trending and the user-vector search; then, with the vectors, the content search
    around each recent item. The same statements as each source's own read, so the same answers; a
    backend or filters whose search is not one plain statement (FAISS, narrowing filters) are left to the
    sources."""
    from core.round_trip import reads_run
    from recommendations.covisitation import covisitation_neighbours_read, covisitation_summed_read

    k = SOURCE_K if k is None else k  # read at call time: the offline evaluation tries other values
    memo = context.memo
    backend = get_backend()
    search_read = getattr(backend, "search_read", None)
    first: dict[Any, Any] = {}
    if "vectors" not in memo:
        first["vectors"] = selectors.history_vectors_read(item_pks=context.anchors[: selectors.EXPLAIN_ITEMS])
    if "neighbours" not in _covisitation_memory:
        anchors = list(context.anchors[:COVIS_ANCHORS])
        for kind in ("bought", "viewed"):
            if anchors and f"covis:{kind}" not in memo:
                first[f"covis:{kind}"] = covisitation_neighbours_read(
                    item_pks=anchors, kind=kind, k=k, filters=filters
                )
        if context.visit_items and "visit_scores" not in memo:
            first["visit_scores"] = covisitation_summed_read(
                item_pks=list(context.visit_items), kind=VISIT_KIND, k=max(k, VISIT_K), filters=filters
            )
    # the shop ids of the visit's items, which name the anchor of a `last_visit` reason
    # (scenarios._source_reason reads those beyond the recent items one query each otherwise)
    beyond = set(context.visit_items) - set(context.anchors[: selectors.EXPLAIN_ITEMS])
    if "last_visit" in names and beyond and "external_ids" not in memo:
        first["external_ids"] = selectors.external_ids_read(item_pks=beyond)
    if "trending" in names:
        first[("trending", k, filters)] = selectors.trending_read(filters=filters, k=k)
    if "user_vector" in names and context.vector is not None and search_read is not None:
        read = search_read(vector=context.vector, k=k, filters=filters)
        if read is not None:
            first[("search", None, k, filters)] = read
    memo.update(zip(first, reads_run(list(first.values())), strict=True))
    if "content_recent" not in names or search_read is None:
        return
    vectors = context.recent_vectors()
    second: dict[Any, Any] = {}
    for pk in [pk for pk in context.anchors if pk in vectors][:CONTENT_ANCHORS]:
        read = search_read(vector=vectors[pk][1], k=k, filters=filters)
        if read is None:
            return
        second[("search", pk, k, filters)] = read
    memo.update(zip(second, reads_run(list(second.values())), strict=True))


@dataclass
class Gathered:
    """The union of the sources' candidates: pks, and per source a score and a 1-based rank (NaN where
    the source did not offer the item)."""

    pks: np.ndarray  # int64
    names: tuple[str, ...]
    scores: np.ndarray  # (n, sources) float32
    ranks: np.ndarray  # (n, sources) float32
    by_source: dict[str, dict[int, float]]


def candidates_gather(
    context: SourceContext,
    *,
    names: tuple[str, ...],
    filters: HardFilters,
    k: int | None = None,
    max_candidates: int | None = None,
) -> Gathered:
    k = SOURCE_K if k is None else k
    max_candidates = MAX_CANDIDATES if max_candidates is None else max_candidates
    by_source = {name: SOURCES[name](context, k=k, filters=filters) for name in names}
    # the union, best-ranked first, so that the cap keeps each source's best
    best: dict[int, int] = {}
    for out in by_source.values():
        for rank, pk in enumerate(sorted(out, key=lambda p: (-out[p], p))):
            if rank < best.get(pk, 1 << 30):
                best[pk] = rank
    pks = np.array(sorted(best, key=lambda p: (best[p], p))[:max_candidates], dtype=np.int64)
    index = {int(pk): i for i, pk in enumerate(pks)}
    scores = np.full((len(pks), len(names)), np.nan, dtype=np.float32)
    ranks = np.full((len(pks), len(names)), np.nan, dtype=np.float32)
    for j, name in enumerate(names):
        out = by_source[name]
        for rank, pk in enumerate(sorted(out, key=lambda p: (-out[p], p))):
            i = index.get(pk)
            if i is not None:
                scores[i, j] = out[pk]
                ranks[i, j] = rank + 1
    return Gathered(pks=pks, names=names, scores=scores, ranks=ranks, by_source=by_source)


def _top(scores: dict[int, float], k: int) -> dict[int, float]:
    if len(scores) <= k:
        return scores
    return dict(sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:k])

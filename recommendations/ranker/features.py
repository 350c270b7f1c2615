"""The ranker's features: one query for the candidates' and the recent items' attributes
(`item_arrays_load`), then pure numpy (`features_matrix`), the same code for training rows and serving.

Per candidate: each source's score and rank (NaN where it did not offer the item), how many sources
offered it, popularity (30-day count and the time-decayed score), age, price against the user's recent
prices, category match with the recent items, content similarity to the last item, to the recent items'
mean and the best over the last few, co-visitation strength with each of the last few items, and with
the whole newest visit (the summed rows, and how many of the visit's items it co-visits with).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from catalog.embedding import current_model_name
from recommendations import selectors
from recommendations.sources import Gathered, SourceContext

# Recent items whose attributes the features compare against (price band, categories, content).
HISTORY_ITEMS = 20
CATEGORY_ITEMS = 5
SIMILARITY_ITEMS = 5
COVIS_FEATURE_ANCHORS = 3

# One row: each attribute of every item as one bytea (the binary values end to end, `float8send` and
# friends), read by numpy without a Python object per value or per item (selectors._FEATURES_SQL does the
# same for re-ranking). Every aggregate reads the rows in the same order (one scan, no ORDER BY of its own).
_ITEMS_SQL = """
WITH f AS (
    SELECT i.id, COALESCE(i.price::float8, 'NaN'::float8) AS price,
           array_to_string(i.category_path, E'\\x1f') AS category,
           extract(epoch FROM COALESCE(i.published_at, i.created_at))::float8 AS published,
           COALESCE(p.interaction_count, 0)::float8 AS n, COALESCE(p.score, 0)::float8 AS score,
           CASE WHEN i.embedding_model = %(model)s THEN i.embedding END AS embedding
    FROM catalog_item i LEFT JOIN recommendations_itempopularity p ON p.item_id = i.id
    WHERE i.id = ANY(%(pks)s::bigint[])
)
SELECT string_agg(int8send(id), ''), string_agg(float8send(price), ''), array_agg(category),
       string_agg(float8send(published), ''), string_agg(float8send(n), ''),
       string_agg(float8send(score), ''), string_agg(boolsend(embedding IS NOT NULL), ''),
       string_agg(vector_send(embedding), '') FILTER (WHERE embedding IS NOT NULL)
FROM f
"""


@dataclass
class ItemArrays:
    pks: np.ndarray  # int64
    price: np.ndarray  # float64, NaN when unknown
    category: list[tuple[str, ...]]
    published: np.ndarray  # epoch seconds
    pop_count: np.ndarray
    pop_score: np.ndarray
    vectors: np.ndarray  # (n, d) L2-normalised, zero rows without a vector

    @classmethod
    def empty(cls, n: int, dim: int) -> ItemArrays:
        return cls(
            pks=np.zeros(n, dtype=np.int64),
            price=np.full(n, np.nan),
            category=[()] * n,
            published=np.full(n, np.nan),
            pop_count=np.zeros(n),
            pop_score=np.zeros(n),
            vectors=np.zeros((n, dim), dtype=np.float32),
        )


def item_arrays_load(*, pks: list[int], dim: int) -> ItemArrays:
    """The attributes of these items (each once, those in the catalog, in no particular order): price,
    category path, published epoch, 30-day count, decayed score, and the current model's vector
    L2-normalised (a zero row without one)."""
    if not pks:
        return ItemArrays.empty(0, dim)
    (row,) = selectors._binary_rows(
        _ITEMS_SQL, {"pks": selectors.pk_array_literal(pks), "model": current_model_name()}
    )
    ids, price, paths, published, count, score, has_vector, vectors = row
    found = selectors._int8s(ids)
    out = ItemArrays.empty(len(found), dim)
    out.pks = found
    if not len(found):
        return out
    out.price = np.frombuffer(price, dtype=">f8").astype(np.float64)
    split: dict[str, tuple[str, ...]] = {}
    out.category = [
        split.get(p) or split.setdefault(p, tuple(p.split(selectors._PATH_SEPARATOR)) if p else ())
        for p in paths
    ]
    out.published = np.frombuffer(published, dtype=">f8").astype(np.float64)
    out.pop_count = np.frombuffer(count, dtype=">f8").astype(np.float64)
    out.pop_score = np.frombuffer(score, dtype=">f8").astype(np.float64)
    has = selectors._int8s(has_vector, ">u1").astype(bool)
    matrix = selectors._vectors(vectors)
    if len(matrix):
        # each row's norm as np.linalg.norm computes it for one vector (sqrt of its dot with itself), so
        # the features are the same to the bit as when they were normalised one item at a time
        norms = np.sqrt(np.matmul(matrix[:, None, :], matrix[:, :, None]).ravel())
        rows = np.flatnonzero(has)
        positive = norms > 0
        out.vectors[rows[positive]] = matrix[positive] / norms[positive, None]
    return out


def item_arrays(pks: np.ndarray | list[int], loaded: ItemArrays) -> ItemArrays:
    """The loaded attributes in the order of `pks` (defaults for items not loaded)."""
    pks = np.asarray(pks, dtype=np.int64)
    out = ItemArrays.empty(len(pks), loaded.vectors.shape[1])
    out.pks = pks
    if not len(pks) or not len(loaded.pks):
        return out
    src, hit = _positions(loaded.pks, pks)
    dst = np.flatnonzero(hit)
    out.price[dst] = loaded.price[src]
    out.published[dst] = loaded.published[src]
    out.pop_count[dst] = loaded.pop_count[src]
    out.pop_score[dst] = loaded.pop_score[src]
    out.vectors[dst] = loaded.vectors[src]
    category = list(out.category)
    for d, s_ in zip(dst.tolist(), src.tolist(), strict=True):
        category[d] = loaded.category[s_]
    out.category = category
    return out


def _positions(pks: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each of `keys` is in `pks` (distinct), and which keys are there at all."""
    order = np.argsort(pks, kind="stable")
    at = np.minimum(np.searchsorted(pks, keys, sorter=order), len(order) - 1)
    found = pks[order[at]] == keys
    return order[at[found]], found


def feature_names(source_names: tuple[str, ...]) -> list[str]:
    names = [f"{s}_score" for s in source_names] + [f"{s}_rank" for s in source_names]
    names += ["n_sources", "pop_count", "pop_recent", "age_days", "price_ratio", "price_in_band"]
    names += ["category_match", "subcategory_match", "sim_last", "sim_history", "sim_recent_max"]
    names += [f"bought_with_{j}" for j in range(COVIS_FEATURE_ANCHORS)] + ["viewed_with_any"]
    # the visit's summed rows are of kind sources.VISIT_KIND ("shoppers"; "visit_covis_*" were "bought")
    names += ["visit_shoppers_sum", "visit_shoppers_hits"]
    return names


def features_matrix(
    gathered: Gathered,
    candidates: ItemArrays,
    history: ItemArrays,
    *,
    now_ts: float,
    covis_bought: dict[int, dict[int, float]],
    covis_viewed: dict[int, dict[int, float]],
    anchors: tuple[int, ...],
    visit: dict[int, tuple[float, int, int]] | None = None,
) -> np.ndarray:
    """(candidates, features) float32; `history` is the recent items, newest first; `visit` is each
    neighbour's (summed score, items) over the newest visit's co-visitation rows."""
    n = len(gathered.pks)
    cols: list[np.ndarray] = [gathered.scores[:, j] for j in range(len(gathered.names))]
    cols += [gathered.ranks[:, j] for j in range(len(gathered.names))]
    cols.append((~np.isnan(gathered.scores)).sum(axis=1).astype(np.float32))
    cols.append(np.log1p(candidates.pop_count))
    cols.append(np.log1p(candidates.pop_score))
    cols.append((now_ts - candidates.published) / 86400.0)

    known = history.price[~np.isnan(history.price) & (history.price > 0)]
    if len(known):
        median = float(np.median(known))
        with np.errstate(divide="ignore", invalid="ignore"):
            cols.append(np.log(candidates.price / median))
        cols.append(
            ((candidates.price >= known.min()) & (candidates.price <= known.max())).astype(np.float32)
        )
    else:
        cols += [np.full(n, np.nan), np.full(n, np.nan)]

    recent_cats = [c for c in history.category[:CATEGORY_ITEMS] if c]
    if recent_cats:
        tops: dict[tuple[str, ...], int] = {}
        leaves: dict[tuple[str, ...], int] = {}
        for c in recent_cats:
            tops[c[:1]] = tops.get(c[:1], 0) + 1
            leaves[c] = leaves.get(c, 0) + 1
        cols.append(np.array([tops.get(c[:1], 0) for c in candidates.category]) / len(recent_cats))
        cols.append(np.array([leaves.get(c, 0) for c in candidates.category]) / len(recent_cats))
    else:
        cols += [np.full(n, np.nan), np.full(n, np.nan)]

    has = np.linalg.norm(history.vectors, axis=1) > 0
    hv = history.vectors[has]
    cand_has = np.linalg.norm(candidates.vectors, axis=1) > 0
    if len(hv):
        sims = candidates.vectors @ hv[:SIMILARITY_ITEMS].T
        mean = hv.mean(axis=0)
        mean /= max(float(np.linalg.norm(mean)), 1e-12)
        last = sims[:, 0]
        hist = candidates.vectors @ mean
        best = sims.max(axis=1)
        for col in (last, hist, best):
            col = col.astype(np.float32)
            col[~cand_has] = np.nan
            cols.append(col)
    else:
        cols += [np.full(n, np.nan)] * 3

    def column(values: dict[int, float]) -> np.ndarray:
        """Each candidate's value in `values` (0 where it has none), float32."""
        out = np.zeros(n, dtype=np.float32)
        if values and n:
            keys = np.fromiter(values, np.int64, len(values))
            at, found = _positions(gathered.pks, keys)
            out[at] = np.fromiter(values.values(), np.float64, len(values))[found]
        return out

    for j in range(COVIS_FEATURE_ANCHORS):
        cols.append(column(covis_bought.get(anchors[j], {}) if j < len(anchors) else {}))
    viewed = np.zeros(n, dtype=np.float32)
    for row in covis_viewed.values():
        viewed += column(row)
    cols.append(viewed)
    visit = visit or {}
    cols.append(column({pk: v[0] for pk, v in visit.items()}))
    cols.append(column({pk: float(v[1]) for pk, v in visit.items()}))
    return np.column_stack([np.asarray(c, dtype=np.float32) for c in cols]) if n else np.zeros((0, len(cols)))


def context_features(context: SourceContext, gathered: Gathered, *, now_ts: float, dim: int) -> np.ndarray:
    """The serving (and training-row) entry point: one query for attributes, then `features_matrix`."""
    history_pks = list(context.anchors[:HISTORY_ITEMS])
    loaded = item_arrays_load(pks=[*map(int, gathered.pks), *history_pks], dim=dim)
    from recommendations.retrieval.base import HardFilters
    from recommendations.sources import COVIS_ANCHORS, SOURCE_K

    filters = context.memo.get("filters", HardFilters())
    covis_bought = context.covisitation("bought", k=SOURCE_K, filters=filters) if COVIS_ANCHORS else {}
    covis_viewed = context.covisitation("viewed", k=SOURCE_K, filters=filters)
    visit = context.visit_scores(k=SOURCE_K, filters=filters)
    return features_matrix(
        gathered,
        item_arrays(gathered.pks, loaded),
        item_arrays(history_pks, loaded),
        now_ts=now_ts,
        covis_bought=covis_bought,
        covis_viewed=covis_viewed,
        anchors=context.anchors,
        visit=visit,
    )

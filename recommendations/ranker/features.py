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

_ITEMS_SQL = """
SELECT i.id, i.price, i.category_path, extract(epoch FROM COALESCE(i.published_at, i.created_at)),
       COALESCE(p.interaction_count, 0), COALESCE(p.score, 0),
       CASE WHEN i.embedding_model = %(model)s THEN i.embedding END
FROM catalog_item i LEFT JOIN recommendations_itempopularity p ON p.item_id = i.id
WHERE i.id = ANY(%(pks)s::bigint[])
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


def item_arrays_load(*, pks: list[int]) -> dict[int, tuple]:
    """pk -> (price, category path, published epoch, 30-day count, decayed score, vector or None)."""
    if not pks:
        return {}
    rows = selectors._binary_rows(
        _ITEMS_SQL, {"pks": selectors.pk_array_literal(pks), "model": current_model_name()}
    )
    return {
        pk: (
            float(price) if price is not None else np.nan,
            tuple(path or ()),
            float(published),
            float(count),
            float(score),
            selectors._vector(data),
        )
        for pk, price, path, published, count, score, data in rows
    }


def item_arrays(pks: np.ndarray | list[int], rows: dict[int, tuple], dim: int) -> ItemArrays:
    n = len(pks)
    out = ItemArrays(
        pks=np.asarray(pks, dtype=np.int64),
        price=np.full(n, np.nan),
        category=[()] * n,
        published=np.full(n, np.nan),
        pop_count=np.zeros(n),
        pop_score=np.zeros(n),
        vectors=np.zeros((n, dim), dtype=np.float32),
    )
    for i, pk in enumerate(out.pks):
        row = rows.get(int(pk))
        if row is None:
            continue
        out.price[i], out.category[i], out.published[i], out.pop_count[i], out.pop_score[i], vector = row
        if vector is not None:
            norm = float(np.linalg.norm(vector))
            if norm > 0:
                out.vectors[i] = vector / norm
    return out


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

    pks = [int(pk) for pk in gathered.pks]
    for j in range(COVIS_FEATURE_ANCHORS):
        row = covis_bought.get(anchors[j], {}) if j < len(anchors) else {}
        cols.append(np.array([row.get(pk, 0.0) for pk in pks], dtype=np.float32))
    viewed = np.zeros(n, dtype=np.float32)
    for row in covis_viewed.values():
        viewed += np.array([row.get(pk, 0.0) for pk in pks], dtype=np.float32)
    cols.append(viewed)
    visit = visit or {}
    cols.append(np.array([visit.get(pk, (0.0, 0, 0))[0] for pk in pks], dtype=np.float32))
    cols.append(np.array([visit.get(pk, (0.0, 0, 0))[1] for pk in pks], dtype=np.float32))
    return np.column_stack([np.asarray(c, dtype=np.float32) for c in cols]) if n else np.zeros((0, len(cols)))


def context_features(context: SourceContext, gathered: Gathered, *, now_ts: float, dim: int) -> np.ndarray:
    """The serving (and training-row) entry point: one query for attributes, then `features_matrix`."""
    history_pks = list(context.anchors[:HISTORY_ITEMS])
    rows = item_arrays_load(pks=[*map(int, gathered.pks), *history_pks])
    from recommendations.retrieval.base import HardFilters
    from recommendations.sources import COVIS_ANCHORS, SOURCE_K

    filters = context.memo.get("filters", HardFilters())
    covis_bought = context.covisitation("bought", k=SOURCE_K, filters=filters) if COVIS_ANCHORS else {}
    covis_viewed = context.covisitation("viewed", k=SOURCE_K, filters=filters)
    visit = context.visit_scores(k=SOURCE_K, filters=filters)
    return features_matrix(
        gathered,
        item_arrays(gathered.pks, rows, dim),
        item_arrays(history_pks, rows, dim),
        now_ts=now_ts,
        covis_bought=covis_bought,
        covis_viewed=covis_viewed,
        anchors=context.anchors,
        visit=visit,
    )

"""The pgvector backend: one SQL query returns the K nearest items with every hard filter inside it.

Two plans, chosen per query:
- ANN: the HNSW index (`embedding vector_cosine_ops`) with pgvector 0.8 iterative scans
  (`hnsw.iterative_scan = relaxed_order`), so that a filter that rejects most of the first candidates makes
  the scan go on instead of returning a short list. Relaxed order can return neighbours slightly out of
  order, so the K rows are re-sorted by distance outside a MATERIALIZED CTE.
- Exact: when the planner estimates that few rows pass the filters (a 1%-selective category, a narrow
  price range), scanning those rows and computing every distance is both cheaper and exact, while an ANN
  scan would have to walk a large part of the graph to find them. The index scan is disabled for that one
  query (SET LOCAL in the same transaction).
If an ANN answer still comes back short while the estimate says enough rows match, the query is repeated
exactly, so a filter never starves the list.

Both vector spaces (base.py) go through the same query, filters and settings: the content space reads
`catalog_item i`, a model space joins the version's rows of `recommendations_modelitemvector v` (the
version's partial HNSW index, `WHERE version_id = N`, matches its predicate) to `catalog_item i`. A model
space plans without an estimate and repeats the query exactly whenever the ANN answer is short (keeping the
longer answer), as two-tower serving always did; its ef_search is MODEL_EF_SEARCH.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.conf import settings

from catalog.embedding import current_model_name
from core.replicas import read_connection
from core.round_trip import Read
from recommendations.models import ModelItemVector
from recommendations.retrieval.base import CONTENT, Candidate, HardFilters, ModelSpace, Space

# Below this many estimated matching rows the exact plan is used. Measured on 100k items (bench/
# filtered_recall.py): an exact scan of ~1,000 filtered rows takes a few ms, while an ANN scan for a
# 1%-selective filter visits tens of thousands of graph nodes.
EXACT_MAX_ROWS = int(getattr(settings, "RECSYS_EXACT_SEARCH_MAX_ROWS", 10_000))
# ef_search: the HNSW candidate list per scan step. By default serving asks for more candidates than that
# (candidate_k 100, the ranker's sources 150 each), so the iterative scan goes on past it anyway. 40, 100
# and 200 gave the same NDCG@10 in the offline evaluation (bench/candidate_k.py), and recall@100 on the
# 100k serving catalog did not separate them (docs/serving-speed.md, "candidate_k and ef_search").
EF_SEARCH = int(getattr(settings, "RECSYS_HNSW_EF_SEARCH", 40))
# The model spaces' vectors (a backend that keeps its own copy reads them from here).
MODEL_VECTOR_TABLE = ModelItemVector._meta.db_table
# ef_search in a model space (64-d item-tower vectors), as two-tower serving has used since it existed.
MODEL_EF_SEARCH = 200
# How many tuples an iterative scan may visit before giving up (pgvector default 20,000).
MAX_SCAN_TUPLES = int(getattr(settings, "RECSYS_HNSW_MAX_SCAN_TUPLES", 40_000))


def vector_literal(vector: np.ndarray) -> str:
    """pgvector's text input format, '[x,y,...]'."""
    return "[" + ",".join(f"{x:.7g}" for x in np.asarray(vector, dtype=np.float32).ravel()) + "]"


def filters_where(
    filters: HardFilters, *, require_vector: bool = True, active_only: bool = True
) -> tuple[str, dict[str, Any]]:
    """The WHERE clause (on `catalog_item i`) for the hard filters, and its parameters. Trending, which
    needs no vector, passes `require_vector=False`. The candidates' features (`active_only=False`) leave
    an inactive item to `in_stock_only`, as its `available` feature does."""
    clauses = ["i.is_active" if active_only else "TRUE"]
    params: dict[str, Any] = {}
    if require_vector:
        clauses += ["i.embedding IS NOT NULL", "i.embedding_model = %(model)s"]
        params["model"] = current_model_name()
    if filters.in_stock_only:
        clauses.append(
            ("" if active_only else "i.is_active AND ") + "i.in_stock AND (i.stock IS NULL OR i.stock > 0)"
        )
    if filters.category_prefix:
        # `@>` lets the planner estimate the selectivity from the array statistics; the slice makes it a
        # true prefix match (a name may occur at several depths).
        clauses.append(
            "i.category_path @> %(category)s::varchar[] AND i.category_path[1:%(depth)s] = %(category)s::varchar[]"
        )
        params["category"] = list(filters.category_prefix)
        params["depth"] = len(filters.category_prefix)
    if filters.min_price is not None:
        clauses.append("i.price >= %(min_price)s")
        params["min_price"] = filters.min_price
    if filters.max_price is not None:
        clauses.append("i.price <= %(max_price)s")
        params["max_price"] = filters.max_price
    if filters.exclude_item_pks:
        clauses.append("NOT (i.id = ANY(%(exclude)s::bigint[]))")
        params["exclude"] = sorted(filters.exclude_item_pks)
    return " AND ".join(clauses), params


def _is_narrowing(filters: HardFilters) -> bool:
    return bool(filters.category_prefix) or filters.min_price is not None or filters.max_price is not None


@dataclass(frozen=True)
class _Source:
    """Where a space's vectors are, for the one query: the FROM clause (`catalog_item` is always `i`), the
    vector column, the WHERE clause with the hard filters, and how the plan is chosen."""

    tables: str
    vector: str
    where: str
    params: dict[str, Any]
    ef_search: int
    estimate: bool  # estimate the matching rows (narrowing filters) to choose the exact plan
    retry_short: bool  # without an estimate, repeat a short ANN answer exactly


def _source(space: Space, filters: HardFilters) -> _Source:
    if isinstance(space, ModelSpace):
        where, params = filters_where(filters, require_vector=False)
        params["version"] = int(space.version_id)
        return _Source(
            tables=f"{MODEL_VECTOR_TABLE} v JOIN catalog_item i ON i.id = v.item_id",
            vector="v.embedding",
            where=f"v.version_id = %(version)s AND {where}",
            params=params,
            ef_search=MODEL_EF_SEARCH,
            estimate=False,
            retry_short=True,
        )
    where, params = filters_where(filters)
    return _Source(
        tables="catalog_item i",
        vector="i.embedding",
        where=where,
        params=params,
        ef_search=EF_SEARCH,
        estimate=_is_narrowing(filters),
        retry_short=False,
    )


class PgvectorBackend:
    """Reads the vectors' tables directly, so it is always up to date and `items_changed` is a no-op."""

    name = "pgvector"

    def search(
        self, *, vector: np.ndarray, k: int, filters: HardFilters, space: Space = CONTENT
    ) -> list[Candidate]:
        source = _source(space, filters)
        params = {**source.params, "q": vector_literal(vector), "k": int(k)}
        estimate = (
            self.estimate_rows(where=source.where, params=params, tables=source.tables)
            if source.estimate
            else None
        )
        exact = estimate is not None and estimate <= EXACT_MAX_ROWS
        rows = self._query(where=source.where, params=params, exact=exact, source=source)
        if not exact and len(rows) < k and (source.retry_short if estimate is None else estimate >= k):
            exact_rows = self._query(where=source.where, params=params, exact=True, source=source)
            if len(exact_rows) > len(rows):
                rows = exact_rows
        return [Candidate(item_pk=pk, distance=float(distance)) for pk, distance in rows]

    def items_changed(self, *, item_pks: list[int]) -> None:
        return None

    def passing(self, *, item_pks: list[int], filters: HardFilters, space: Space = CONTENT) -> set[int]:
        """Those of `item_pks` that pass `filters` in `space` now (one query): a backend that searches a
        copy of the vectors checks its answer against the table with it."""
        if not item_pks:
            return set()
        source = _source(space, filters)
        with read_connection().cursor() as cur:
            cur.execute(
                f"SELECT i.id FROM {source.tables} WHERE i.id = ANY(%(pks)s::bigint[]) AND {source.where}",
                {**source.params, "pks": [int(pk) for pk in item_pks]},
            )
            return {row[0] for row in cur.fetchall()}

    def estimate_rows(self, *, where: str, params: dict[str, Any], tables: str = "catalog_item i") -> float:
        """The planner's estimate of how many items pass the filters (planning only, no execution)."""
        with read_connection().cursor() as cur:
            cur.execute(f"EXPLAIN (FORMAT JSON) SELECT 1 FROM {tables} WHERE {where}", params)
            plan = cur.fetchone()[0]
        if isinstance(plan, str):
            plan = json.loads(plan)
        return float(plan[0]["Plan"]["Plan Rows"])

    def _query(
        self, *, where: str, params: dict[str, Any], exact: bool, source: _Source | None = None
    ) -> list[tuple[int, float]]:
        """One round trip: the SET LOCALs, the query and the resets are sent as one simple-protocol message
        (Django's psycopg backend binds parameters client-side), which Postgres runs as one implicit
        transaction, so the settings end with it; inside a caller's transaction the resets undo them.
        Round trips are what a loaded 2-core box pays for most (BEGIN / SET / SELECT / COMMIT was 4).
        `source` defaults to the content space (bench/filtered_recall.py passes `where` only)."""
        statement, before, after = _statements(where=where, exact=exact, source=source)
        with read_connection().cursor() as cur:
            cur.execute(";\n".join([*before, statement, *after]), params)
            while cur.description is None and cur.nextset():
                pass
            return cur.fetchall()

    def search_read(
        self, *, vector: np.ndarray, k: int, filters: HardFilters, space: Space = CONTENT
    ) -> Read | None:
        """`search` as a `Read` (core.round_trip), when it is one ANN query: None when the plan depends on
        an estimate (narrowing filters) or a short answer would be repeated exactly (a model space); the
        caller then calls `search`."""
        source = _source(space, filters)
        if source.estimate or source.retry_short:
            return None
        statement, before, after = _statements(where=source.where, exact=False, source=source)
        return Read(
            statement,
            {**source.params, "q": vector_literal(vector), "k": int(k)},
            lambda rows: [Candidate(item_pk=pk, distance=float(distance)) for pk, distance in rows],
            before=tuple(before),
            after=tuple(after),
        )


def _statements(*, where: str, exact: bool, source: _Source | None) -> tuple[str, list[str], list[str]]:
    """The search query, and the SET LOCALs before it and their resets after it."""
    tables, column, ef_search = (
        (source.tables, source.vector, source.ef_search)
        if source
        else ("catalog_item i", "i.embedding", EF_SEARCH)
    )
    if exact:
        before = ["SET LOCAL enable_indexscan = off"]
    else:
        before = [
            "SET LOCAL hnsw.iterative_scan = relaxed_order",
            f"SET LOCAL hnsw.ef_search = {int(ef_search)}",
            f"SET LOCAL hnsw.max_scan_tuples = {int(MAX_SCAN_TUPLES)}",
        ]
    after = [statement.split(" = ")[0] + " TO DEFAULT" for statement in before]
    sql = f"""
            WITH c AS MATERIALIZED (
                SELECT i.id, {column} <=> %(q)s::vector AS distance
                FROM {tables}
                WHERE {where}
                ORDER BY {column} <=> %(q)s::vector
                LIMIT %(k)s
            )
            SELECT id, distance FROM c ORDER BY distance, id
        """
    return sql, before, after

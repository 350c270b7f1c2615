"""The two-tower model on the request path.

- `query_for_user` / `query_for_items`: the active version's user tower, run online on the user's (or
  session's) most recent items read at request time, so an event stored a moment ago changes the next
  answer. The history items' vectors come from the version's item vectors (one query); the tower itself is
  a few small numpy products (~0.1-0.3 ms, bench/two_tower.py).
- `search`: the nearest items to that vector among the version's item vectors, with every hard filter in
  the same SQL (pgvector, the version's own partial HNSW index), or through a per-process FAISS index of
  the version when RECSYS_VECTOR_BACKEND=faiss.

None comes back (and the scenario uses content vectors, as before) when no version is active, the user or
session has no history, or none of its items has a model vector.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from django.conf import settings
from django.db import connection

from core.replicas import read_connection
from recommendations.models import ModelItemVector, ModelVersion
from recommendations.retrieval.base import Candidate, HardFilters
from recommendations.retrieval.pgvector_backend import filters_where, vector_literal
from recommendations.two_tower.features import distinct_first, sequence_encode
from recommendations.two_tower.user_tower import user_vector_numpy

# Events read per request for the user tower (it looks at the last max_len distinct items of them).
RECENT_EVENTS = 200
EF_SEARCH = 200
# FAISS mode: over-fetch before the SQL filter check; if fewer than k pass, the exact SQL answers instead.
FAISS_OVERFETCH = 4
FAISS_RELOAD_SECONDS = 60.0


@dataclass(frozen=True)
class Query:
    """A user-tower vector, ready to search the version it was computed with."""

    version_id: int
    name: str
    vector: np.ndarray

    def search(self, *, k: int, filters: HardFilters) -> dict[int, float]:
        return {
            c.item_pk: 1.0 - c.distance
            for c in search(version_id=self.version_id, vector=self.vector, k=k, filters=filters)
        }


# The active version is cached per process for this long (like the serving config in selectors.py): a
# promotion or rollback reaches every worker within it, and the process that made it at once
# (`active_version_clear`). Saves a round trip per request.
ACTIVE_TTL_SECONDS = 2.0
_active: dict = {"expires": 0.0, "version": None}
_active_lock = threading.Lock()


def active_version_clear() -> None:
    with _active_lock:
        _active["expires"] = 0.0


def active_version() -> ModelVersion | None:
    """The active version, or None (content vectors serve)."""
    now = time.monotonic()
    if _active["expires"] > now:
        return _active["version"]
    version = (
        ModelVersion.objects.filter(kind=ModelVersion.Kind.TWO_TOWER, is_active=True)
        .only("pk", "artifact_path")
        .first()
    )
    with _active_lock:
        _active.update(version=version, expires=now + ACTIVE_TTL_SECONDS)
    return version


def _recent_events(*, user_id: str, session_id: str) -> list[tuple[int, str, float]]:
    # From the primary even while serving from a replica: the user's own latest events (read-your-writes).
    column = "user_id" if user_id else "session_id"
    with connection.cursor() as cur:
        cur.execute(
            f"""
            SELECT item_id, event_type, extract(epoch FROM timestamp) FROM interactions_event
            WHERE {column} = %s AND item_id IS NOT NULL ORDER BY timestamp DESC, id DESC LIMIT %s
            """,
            [user_id or session_id, RECENT_EVENTS],
        )
        return [(pk, kind, float(ts)) for pk, kind, ts in reversed(cur.fetchall())]


def _model_vectors(*, version_id: int, item_pks: list[int]) -> dict[int, np.ndarray]:
    """pgvector's binary form (vector_send: int16 dim, int16 unused, float4 big-endian each): parsing the
    text form through the ORM cost ~20 ms for 60 vectors on this box, this is well under 1 ms."""
    if not item_pks:
        return {}
    with read_connection().cursor() as cur:
        cur.execute(
            "SELECT item_id, vector_send(embedding) FROM recommendations_modelitemvector "
            "WHERE version_id = %s AND item_id = ANY(%s::bigint[])",
            [version_id, list(item_pks)],
        )
        return {
            pk: np.frombuffer(bytes(raw), dtype=">f4", offset=4).astype(np.float32)
            for pk, raw in cur.fetchall()
        }


def _query(version: ModelVersion, items: list[int], types: list[str], ts: list[float]) -> Query | None:
    # imported here: torch loads (once per process, ~2 s) only when a version is active
    from recommendations.two_tower.artifacts import artifact_load

    loaded = artifact_load(version.artifact_path)
    max_len = loaded.trained.config.max_len
    # Only the newest distinct items can reach the tower: fetch (and parse) vectors for those, with room
    # for a few without a model vector (parsing 200 vectors cost more than the rest of the request).
    d_items, d_types, d_ts = distinct_first(items, types, ts)
    vectors = _model_vectors(version_id=version.pk, item_pks=d_items[-2 * max_len :])
    kept = [(i, k, t) for i, k, t in zip(d_items, d_types, d_ts, strict=True) if i in vectors]
    if not kept:
        return None
    d_items, d_types, d_ts = (list(x) for x in zip(*kept, strict=True))
    seq = sequence_encode(d_items, d_types, d_ts, max_len=max_len)
    tokens = np.zeros((seq.items.shape[1], loaded.trained.model.shape.dim), dtype=np.float32)
    for j, pk in enumerate(seq.items[0]):
        if pk >= 0:
            tokens[j] = vectors[int(pk)]
    return Query(
        version_id=version.pk, name=version.name, vector=user_vector_numpy(loaded.user_tower, tokens, seq)
    )


def query_for_user(
    *, user_id: str = "", session_id: str = "", version: ModelVersion | None = None
) -> Query | None:
    """The user tower over the user's (else the session's) recent events, or None (content fallback).
    `version` replaces the active one (an experiment's arm)."""
    if not user_id and not session_id:
        return None
    version = version or active_version()
    if version is None:
        return None
    events = _recent_events(user_id=user_id, session_id=session_id)
    if not events:
        return None
    return _query(version, [e[0] for e in events], [e[1] for e in events], [e[2] for e in events])


def query_for_items(*, item_pks: list[int], version: ModelVersion | None = None) -> Query | None:
    """The user tower over a session's recent items (oldest first, as the session API takes them): all
    count as views of this moment. `version` replaces the active one (an experiment's arm)."""
    version = version or active_version()
    if version is None or not item_pks:
        return None
    now = datetime.now(UTC).timestamp()
    return _query(version, list(item_pks), ["view"] * len(item_pks), [now] * len(item_pks))


def search(*, version_id: int, vector: np.ndarray, k: int, filters: HardFilters) -> list[Candidate]:
    if settings.RECSYS_VECTOR_BACKEND == "faiss":
        found = _faiss_search(version_id=version_id, vector=vector, k=k, filters=filters)
        if found is not None:
            return found
    return _sql_search(version_id=version_id, vector=vector, k=k, filters=filters)


def _sql_search(
    *, version_id: int, vector: np.ndarray, k: int, filters: HardFilters, exact: bool = False
) -> list[Candidate]:
    """The version's partial HNSW index (`WHERE version_id = N` matches its predicate) with an iterative
    scan so filters do not shorten the list; exact when the ANN answer comes back short."""
    where, params = filters_where(filters, require_vector=False)
    params.update(q=vector_literal(vector), k=int(k), version=int(version_id))
    before = (
        ["SET LOCAL enable_indexscan = off"]
        if exact
        else ["SET LOCAL hnsw.iterative_scan = relaxed_order", f"SET LOCAL hnsw.ef_search = {EF_SEARCH}"]
    )
    after = [statement.split(" = ")[0] + " TO DEFAULT" for statement in before]
    sql = f"""
        WITH c AS MATERIALIZED (
            SELECT v.item_id AS id, v.embedding <=> %(q)s::vector AS distance
            FROM recommendations_modelitemvector v JOIN catalog_item i ON i.id = v.item_id
            WHERE v.version_id = %(version)s AND {where}
            ORDER BY v.embedding <=> %(q)s::vector
            LIMIT %(k)s
        )
        SELECT id, distance FROM c ORDER BY distance, id
    """
    # One simple-protocol message, as the pgvector backend does: the SET LOCALs end with it.
    with read_connection().cursor() as cur:
        cur.execute(";\n".join([*before, sql, *after]), params)
        while cur.description is None and cur.nextset():
            pass
        rows = cur.fetchall()
    if len(rows) < k and not exact:
        exact_rows = _sql_search(version_id=version_id, vector=vector, k=k, filters=filters, exact=True)
        if len(exact_rows) > len(rows):
            return exact_rows
    return [Candidate(item_pk=pk, distance=float(d)) for pk, d in rows]


# --- FAISS: one flat inner-product index per process for the active version, reloaded when it changes


@dataclass
class _FaissIndex:
    version_id: int
    loaded_at: float
    pks: np.ndarray
    index: object


_faiss_lock = threading.Lock()
_faiss: _FaissIndex | None = None


def _faiss_index(version_id: int) -> _FaissIndex:
    global _faiss
    current = _faiss
    if (
        current is not None
        and current.version_id == version_id
        and time.monotonic() - current.loaded_at < FAISS_RELOAD_SECONDS
    ):
        return current
    with _faiss_lock:
        import faiss

        rows = list(
            ModelItemVector.objects.filter(version_id=version_id)
            .order_by("item_id")
            .values_list("item_id", "embedding")
        )
        pks = np.array([r[0] for r in rows], dtype=np.int64)
        matrix = np.array([np.asarray(r[1], dtype=np.float32) for r in rows], dtype=np.float32).reshape(
            len(rows), -1
        )
        index = faiss.IndexFlatIP(matrix.shape[1] if len(rows) else 1)
        if len(rows):
            index.add(matrix)
        _faiss = _FaissIndex(version_id=version_id, loaded_at=time.monotonic(), pks=pks, index=index)
        return _faiss


def _faiss_search(
    *, version_id: int, vector: np.ndarray, k: int, filters: HardFilters
) -> list[Candidate] | None:
    """Nearest by FAISS, filters checked in one SQL query; None (the caller uses SQL) if that leaves fewer
    than k while the index had more to offer."""
    live = _faiss_index(version_id)
    n = len(live.pks)
    if n == 0:
        return None
    fetch = min(n, k * FAISS_OVERFETCH)
    sims, slots = live.index.search(np.asarray(vector, dtype=np.float32)[None, :], fetch)
    found = [(int(live.pks[s]), float(sim)) for s, sim in zip(slots[0], sims[0], strict=True) if s >= 0]
    where, params = filters_where(filters, require_vector=False)
    params["pks"] = [pk for pk, _ in found]
    with read_connection().cursor() as cur:
        cur.execute(
            f"SELECT i.id FROM catalog_item i WHERE i.id = ANY(%(pks)s::bigint[]) AND {where}", params
        )
        passing = {row[0] for row in cur.fetchall()}
    kept = [Candidate(item_pk=pk, distance=1.0 - sim) for pk, sim in found if pk in passing][:k]
    if len(kept) < k and fetch < n:
        return None
    return sorted(kept, key=lambda c: (c.distance, c.item_pk))

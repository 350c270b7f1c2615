"""The two-tower model on the request path.

- `query_for_user` / `query_for_items`: the active version's user tower, run online on the user's (or
  session's) most recent items read at request time, so an event stored a moment ago changes the next
  answer. The history items' vectors come from the version's item vectors (one query); the tower itself is
  a few small numpy products (~0.1-0.3 ms, bench/two_tower.py).
- `search`: the nearest items to that vector among the version's item vectors, through the configured
  vector backend (`recommendations.retrieval`, space `ModelSpace(version_id)`): pgvector searches the
  version's own partial HNSW index with every hard filter in the same SQL; the FAISS accelerator keeps an
  index per version.

None comes back (and the scenario uses content vectors, as before) when no version is active, the user or
session has no history, or none of its items has a model vector.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from django.db import connection

from core.replicas import read_connection
from recommendations.models import ModelVersion
from recommendations.retrieval import Candidate, HardFilters, ModelSpace, get_backend
from recommendations.two_tower.features import distinct_first, sequence_encode
from recommendations.two_tower.user_tower import user_vector_numpy

# Events read per request for the user tower (it looks at the last max_len distinct items of them).
RECENT_EVENTS = 200


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
    """The nearest items among the version's item vectors, through the configured vector backend."""
    return get_backend().search(vector=vector, k=k, filters=filters, space=ModelSpace(version_id))

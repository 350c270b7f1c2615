"""FAISS in a model space (`ModelSpace(version_id)`: the item vectors of one two-tower version).

Each process keeps an index per version it serves (at most MODEL_INDEXES_KEPT: the active version and an
experiment's other arm), built in memory from the version's vectors with the accelerator's own index code
(`services.index_create`, `search.LiveIndex` and its filter masks), always flat (MODEL_INDEX_TYPE). It is
rebuilt MODEL_RELOAD_SECONDS after it was built, so item vectors added since (new items) and filter fields
changed since reach it; a version the process has not seen gets its index at its first search, so a
promotion or rollback needs no restart. A rebuild holds up only the request that makes it: the others search the old index meanwhile.

The filter fields in the index may be that old, so the answer is checked against the table in one query
(`PgvectorBackend.passing`): the index returns MODEL_OVERFETCH x k candidates that passed its own copy of the
filters, the check keeps those that pass now. If fewer than k remain while the index held more, pgvector
answers (the version's partial HNSW index), so a filter never starves the list.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from accelerator import store
from accelerator.search import LiveIndex
from accelerator.selectors import model_item_rows
from accelerator.services import index_create
from recommendations.retrieval.base import Candidate, HardFilters, ModelSpace
from recommendations.retrieval.pgvector_backend import MODEL_VECTOR_TABLE, PgvectorBackend

logger = logging.getLogger(__name__)

MODEL_INDEXES_KEPT = 2
# Flat (exact), as two-tower serving always used, at any size: model vectors are 64-d, so a flat scan of
# 100k of them took 1.9 ms per query (k=400) and building it 0.02 s, while building HNSW (M=32,
# efConstruction=80, one thread) took 49 s, on the shared 2-core box at load ~6.7 (the script is in the
# commit message that chose flat); an index rebuilt every MODEL_RELOAD_SECONDS on the request path cannot take that long.
MODEL_INDEX_TYPE = "flat"
MODEL_RELOAD_SECONDS = 60.0
MODEL_OVERFETCH = 4


@dataclass(frozen=True)
class _Loaded:
    live: LiveIndex | None  # None: the version has no vectors of active items
    loaded_at: float


def model_index_build(version_id: int) -> LiveIndex | None:
    """The version's vectors as a LiveIndex held in memory, or None when it has none."""
    started = time.perf_counter()
    rows = model_item_rows(table=MODEL_VECTOR_TABLE, version_id=version_id)
    if not len(rows):
        return None
    index_type = MODEL_INDEX_TYPE
    index = index_create(vectors=rows.vectors, index_type=index_type)
    manifest = store.Manifest(
        version=f"model-{version_id}",
        index_type=index_type,
        embedding_model=f"two-tower version {version_id}",
        dim=int(rows.vectors.shape[1]),
        count=len(rows),
        built_at=datetime.now(UTC).isoformat(),
        delta_seq=0,
        build_seconds=round(time.perf_counter() - started, 3),
    )
    categories = sorted(set(rows.category_paths))
    stored = store.version_in_memory(manifest=manifest, index=index, rows=rows, categories=categories)
    logger.info(
        "faiss: built the index of model version %s (%s items, %s)", version_id, len(rows), index_type
    )
    return LiveIndex(stored=stored)


class ModelIndexes:
    """The per-version indexes of one process. Thread-safe: searches read an immutable LiveIndex; one
    thread at a time builds."""

    def __init__(self) -> None:
        self._loaded: OrderedDict[int, _Loaded] = OrderedDict()
        self._lock = threading.Lock()
        self._sql = PgvectorBackend()

    def live(self, version_id: int) -> LiveIndex | None:
        """The version's index; built first if this process has none. An index older than
        MODEL_RELOAD_SECONDS is rebuilt by one thread while the others go on searching it."""
        loaded = self._loaded.get(version_id)
        if loaded is not None and time.monotonic() - loaded.loaded_at < MODEL_RELOAD_SECONDS:
            return loaded.live
        if loaded is not None:
            if not self._lock.acquire(blocking=False):
                return loaded.live
        else:
            self._lock.acquire()
        try:
            loaded = self._loaded.get(version_id)
            if loaded is None or time.monotonic() - loaded.loaded_at >= MODEL_RELOAD_SECONDS:
                loaded = _Loaded(live=model_index_build(version_id), loaded_at=time.monotonic())
                self._loaded[version_id] = loaded
                self._loaded.move_to_end(version_id)
                while len(self._loaded) > MODEL_INDEXES_KEPT:
                    self._loaded.popitem(last=False)
            return loaded.live
        finally:
            self._lock.release()

    def search(
        self, *, vector: np.ndarray, k: int, filters: HardFilters, space: ModelSpace
    ) -> list[Candidate]:
        live = self.live(space.version_id)
        if live is None or k <= 0:
            return self._sql.search(vector=vector, k=k, filters=filters, space=space)
        found = live.search(vector=vector, k=k * MODEL_OVERFETCH, filters=filters)
        passing = self._sql.passing(item_pks=[c.item_pk for c in found], filters=filters, space=space)
        kept = [c for c in found if c.item_pk in passing][:k]
        if len(kept) < k and len(found) == k * MODEL_OVERFETCH:
            return self._sql.search(vector=vector, k=k, filters=filters, space=space)
        return kept

"""`FaissBackend`: the FAISS implementation of `recommendations.retrieval.base.VectorBackend`, chosen with
`RECSYS_VECTOR_BACKEND=faiss` (retrieval resolves it by dotted path and builds one per process).

Lifecycle, in short (docs/faiss.md has the long version):
- `build_faiss_index` (and the hourly beat job, when due) builds an index from Postgres and publishes it
  atomically under `RECSYS_FAISS_DIR`.
- Changed items reach the index through `accelerator.tasks.faiss_items_apply_task`, which writes a delta
  segment; every process applies new segments on top of its loaded version (search.py: overlay +
  tombstones).
- Before a search, at most once every RECSYS_FAISS_RELOAD_SECONDS (default 1 s), the backend looks at the
  manifest (one `stat`) and the delta directory, and loads what is new. No restart needed.
- With no index published yet (or one of another embedding model), the first search builds one, waiting on
  the build lock if someone else is building.

That is the content space. A model space (`ModelSpace(version_id)`, a two-tower version's item vectors) has
an index per version held in memory by each process (model_space.py).
"""

from __future__ import annotations

import logging
import threading
import time

import faiss
import numpy as np
from django.conf import settings

from accelerator import services, store
from accelerator.model_space import ModelIndexes
from accelerator.search import LiveIndex
from recommendations.retrieval.base import CONTENT, Candidate, HardFilters, ModelSpace, Space
from recommendations.retrieval.catalog_access import embedding_model_name

logger = logging.getLogger(__name__)


def _reload_seconds() -> float:
    return float(getattr(settings, "RECSYS_FAISS_RELOAD_SECONDS", 1.0))


class FaissBackend:
    """Thread-safe: searches read an immutable LiveIndex; one thread at a time refreshes it and swaps it."""

    name = "faiss"

    def __init__(self) -> None:
        # One OpenMP thread per search: with 2 threads a single query was measured slower on this machine,
        # and concurrency comes from serving several requests at once.
        faiss.omp_set_num_threads(1)
        self._live: LiveIndex | None = None
        self._signature: tuple[int, int] | None = None
        self._checked_at = float("-inf")
        self._refresh_lock = threading.Lock()
        self._models = ModelIndexes()

    def search(
        self, *, vector: np.ndarray, k: int, filters: HardFilters, space: Space = CONTENT
    ) -> list[Candidate]:
        if isinstance(space, ModelSpace):
            return self._models.search(vector=vector, k=k, filters=filters, space=space)
        live = self.live()
        return live.search(vector=vector, k=k, filters=filters)

    def items_changed(self, *, item_pks: list[int]) -> None:
        from accelerator.receivers import items_changed_enqueue

        items_changed_enqueue(item_pks=item_pks)

    # --- keeping the loaded index current

    def live(self) -> LiveIndex:
        """The loaded index, refreshed first if the last check is older than the reload interval."""
        live = self._live
        if live is None:
            with self._refresh_lock:
                if self._live is None:
                    self._refresh()
            live = self._live
        elif time.monotonic() - self._checked_at >= _reload_seconds():
            # Only one thread refreshes; the others keep searching the index they have.
            if self._refresh_lock.acquire(blocking=False):
                try:
                    self._refresh()
                finally:
                    self._refresh_lock.release()
            live = self._live
        return live

    def refresh(self) -> LiveIndex:
        """Check for a new version and new deltas now (tests, management commands)."""
        with self._refresh_lock:
            self._refresh()
        return self._live

    def _refresh(self) -> None:
        self._checked_at = time.monotonic()
        signature = store.manifest_signature()
        live = self._live
        if live is None or signature != self._signature:
            manifest = store.manifest_read()
            if manifest is None or manifest.embedding_model != embedding_model_name():
                why = "no index" if manifest is None else f"index of model {manifest.embedding_model!r}"
                logger.warning("faiss: %s; building one now (run build_faiss_index ahead of time)", why)
                services.faiss_index_build(wait=True, only_if_missing=True)
                manifest = store.manifest_read()
                signature = store.manifest_signature()
            if live is None or manifest.version != live.manifest.version:
                live = LiveIndex(stored=store.version_load(manifest))
                logger.info("faiss: loaded index %s (%s items)", manifest.version, manifest.count)
            self._signature = signature
        self._live = services.live_index_catch_up(live)

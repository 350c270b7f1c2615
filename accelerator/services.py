"""Writes of the accelerator: building and publishing the index, recording item changes as delta segments,
and the consistency check with its repair.

Why a delta segment is numbered *before* its rows are read: a build reads the last number handed out (M),
then reads the table. A change committed before the build's read is in the build; a change committed after
it sends a signal whose task takes a number above M and reads the table after the change, so it is applied
on top. When several segments hold one item, the highest number wins: it was read last, after the item's
last change.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import faiss
import numpy as np
from django.conf import settings
from django.db import connection
from tqdm import tqdm

from accelerator import store
from accelerator.search import FLAT_MAX_ITEMS, HNSW_EF_CONSTRUCTION, HNSW_M, LiveIndex
from accelerator.selectors import ItemRows, item_rows_for_pks, item_rows_stream
from recommendations.retrieval.catalog_access import embedding_model_name

logger = logging.getLogger(__name__)

# pg_advisory_lock key of the index build ("FAIS"): one build at a time across all processes.
BUILD_LOCK_KEY = 0x46414953
# Vectors added to FAISS per call during a build (progress granularity; HNSW adds each chunk in parallel).
BUILD_ADD_CHUNK = 50_000
# Items per delta segment; a change to more items than DELTA_MAX_ITEMS at once is left to a rebuild.
DELTA_CHUNK = 10_000
DELTA_MAX_ITEMS = 50_000
# A rebuild folds the overlay into the base when it grows past this share of the base (or this count),
# because the overlay is searched exactly, and when the index is older than REBUILD_MAX_AGE_SECONDS.
COMPACT_FRACTION = 0.02
COMPACT_MAX_ITEMS = 20_000
REBUILD_MAX_AGE_SECONDS = 24 * 3600


def delta_seq_next() -> int:
    with connection.cursor() as cur:
        cur.execute("SELECT nextval('accelerator_delta_seq')")
        return int(cur.fetchone()[0])


def delta_seq_last() -> int:
    with connection.cursor() as cur:
        cur.execute("SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM accelerator_delta_seq")
        return int(cur.fetchone()[0])


def _lock(*, wait: bool) -> bool:
    with connection.cursor() as cur:
        if wait:
            cur.execute("SELECT pg_advisory_lock(%s)", [BUILD_LOCK_KEY])
            return True
        cur.execute("SELECT pg_try_advisory_lock(%s)", [BUILD_LOCK_KEY])
        return bool(cur.fetchone()[0])


def _unlock() -> None:
    with connection.cursor() as cur:
        cur.execute("SELECT pg_advisory_unlock(%s)", [BUILD_LOCK_KEY])


def index_type_for(count: int) -> str:
    return "flat" if count <= FLAT_MAX_ITEMS else "hnsw"


def index_create(*, vectors: np.ndarray, index_type: str, progress: bool = False) -> faiss.Index:
    dim = vectors.shape[1]
    if index_type == "flat":
        index = faiss.IndexFlatIP(dim)
    else:
        index = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    chunks = range(0, len(vectors), BUILD_ADD_CHUNK)
    for start in tqdm(chunks, desc=f"faiss {index_type} add", unit="chunk", disable=not progress):
        index.add(vectors[start : start + BUILD_ADD_CHUNK])
    return index


@dataclass
class BuildResult:
    built: bool
    reason: str
    manifest: store.Manifest | None = None
    timings: dict[str, float] = field(default_factory=dict)


def faiss_index_build(
    *,
    wait: bool = False,
    only_if_missing: bool = False,
    progress: bool = False,
    threads: int | None = None,
    index_type: str | None = None,
) -> BuildResult:
    """Build the index from the items in Postgres and publish it. Holds the build advisory lock: with
    `wait=False` returns at once (built=False) when another build holds it. With `only_if_missing`, skips
    when a published index of the current embedding model exists (checked again once the lock is held).
    `threads` sets FAISS's OpenMP threads for the build (searches use one). `index_type` ("flat" or
    "hnsw") overrides the choice by catalog size."""
    if not _lock(wait=wait):
        return BuildResult(built=False, reason="another build is running (advisory lock held)")
    try:
        if only_if_missing:
            manifest = store.manifest_read()
            if manifest is not None and manifest.embedding_model == embedding_model_name():
                return BuildResult(built=False, reason="an index exists", manifest=manifest)
        return _build(progress=progress, threads=threads, index_type=index_type)
    finally:
        _unlock()


def _build(*, progress: bool, threads: int | None, index_type: str | None) -> BuildResult:
    started = time.perf_counter()
    # Read before the table (see the module docstring): segments up to here are in this build.
    delta_seq = delta_seq_last()
    model = embedding_model_name()
    parts = []
    with tqdm(desc="faiss read items", unit="item", disable=not progress) as bar:
        for part in item_rows_stream():
            parts.append(part)
            bar.update(len(part))
    rows = ItemRows.concat(parts)
    del parts
    read_s = time.perf_counter() - started

    index_type = index_type or index_type_for(len(rows))
    previous_threads = faiss.omp_get_max_threads()
    if threads:
        faiss.omp_set_num_threads(threads)
    try:
        t0 = time.perf_counter()
        index = index_create(vectors=rows.vectors, index_type=index_type, progress=progress)
        index_s = time.perf_counter() - t0
    finally:
        faiss.omp_set_num_threads(previous_threads)

    categories = sorted(set(rows.category_paths))
    params = {"M": HNSW_M, "efConstruction": HNSW_EF_CONSTRUCTION} if index_type == "hnsw" else {}
    manifest = store.Manifest(
        version=store.version_new(),
        index_type=index_type,
        embedding_model=model,
        dim=settings.EMBEDDING_DIM,
        count=len(rows),
        built_at=datetime.now(UTC).isoformat(),
        delta_seq=delta_seq,
        build_seconds=round(time.perf_counter() - started, 3),
        params=params,
    )
    t0 = time.perf_counter()
    store.version_publish(manifest=manifest, index=index, rows=rows, categories=categories)
    write_s = time.perf_counter() - t0
    store.deltas_prune(up_to_seq=delta_seq)
    store.versions_prune(current=manifest.version)
    logger.info("faiss index %s published: %s items, %s", manifest.version, len(rows), index_type)
    return BuildResult(
        built=True,
        reason="built",
        manifest=manifest,
        timings={"read_s": read_s, "index_s": index_s, "write_s": write_s},
    )


def faiss_items_apply(*, item_pks: list[int]) -> int:
    """Record the current state of `item_pks` as delta segments, which every process serving from the
    index applies within a second. Safe to repeat: a later segment simply supersedes an earlier one.
    Returns the number of segments written."""
    pks = sorted({int(pk) for pk in item_pks})
    written = 0
    for start in range(0, len(pks), DELTA_CHUNK):
        chunk = pks[start : start + DELTA_CHUNK]
        seq = delta_seq_next()  # before reading the rows: see the module docstring
        rows = item_rows_for_pks(item_pks=chunk)
        store.delta_write(
            store.Delta(
                seq=seq,
                embedding_model=embedding_model_name(),
                item_pks=np.array(chunk, np.int64),
                rows=rows,
            )
        )
        written += 1
    return written


def live_index_load() -> LiveIndex | None:
    """The published version with every delta segment after it applied, or None before the first build."""
    manifest = store.manifest_read()
    if manifest is None:
        return None
    live = LiveIndex(stored=store.version_load(manifest))
    return live_index_catch_up(live)


def live_index_catch_up(live: LiveIndex) -> LiveIndex:
    seqs = [s for s in store.delta_seqs() if s > live.manifest.delta_seq and s not in live.applied]
    deltas = [d for d in map(store.delta_read, seqs) if d is not None]
    model = live.manifest.embedding_model
    return live.with_deltas([d for d in deltas if d.embedding_model == model])


def faiss_index_refresh() -> BuildResult:
    """The periodic job: rebuild when there is no index, the embedding model changed, the overlay of
    changes grew past COMPACT_FRACTION/COMPACT_MAX_ITEMS (compaction), or the index is a day old."""
    live = live_index_load()
    reason = None
    if live is None:
        reason = "no index"
    elif live.manifest.embedding_model != embedding_model_name():
        reason = "embedding model changed"
    else:
        overlay = len(live.overlay.seqs)
        if overlay > min(COMPACT_MAX_ITEMS, max(1000, COMPACT_FRACTION * live.manifest.count)):
            reason = f"compaction ({overlay} items changed since the build)"
        else:
            built = datetime.fromisoformat(live.manifest.built_at)
            if (datetime.now(UTC) - built).total_seconds() > REBUILD_MAX_AGE_SECONDS:
                reason = "index older than a day"
    if reason is None:
        return BuildResult(built=False, reason="up to date", manifest=live.manifest)
    result = faiss_index_build(wait=False)
    if result.built:
        result.reason = reason
    return result


@dataclass
class ConsistencyReport:
    checked: int
    missing: list[int]  # in the database, eligible, absent from the index
    stale: list[int]  # in both, but the index holds another vector or other filter fields
    extra: list[int]  # in the index, but deactivated / without a current vector in the database
    repaired: bool = False

    @property
    def consistent(self) -> bool:
        return not (self.missing or self.stale or self.extra)


def faiss_consistency_check(*, repair: bool = False) -> ConsistencyReport | None:
    """Compare what the index (published version + deltas) holds with the database. With `repair`, write
    delta segments for every item found wrong. None when no index has been built."""
    live = live_index_load()
    if live is None:
        return None
    held = live.state()
    seen = np.zeros(len(held.pks), bool)
    missing: list[int] = []
    stale: list[int] = []
    checked = 0
    for rows in item_rows_stream():
        checked += len(rows)
        slots = np.searchsorted(held.pks, rows.pks)
        slots = np.minimum(slots, max(len(held.pks) - 1, 0))
        found = (held.pks[slots] == rows.pks) if len(held.pks) else np.zeros(len(rows), bool)
        missing.extend(rows.pks[~found].tolist())
        idx = np.flatnonzero(found)
        hs = slots[idx]
        seen[hs] = True
        differs = (
            (held.vectors[hs] != rows.vectors[idx]).any(axis=1)
            | (held.in_stock[hs] != rows.in_stock[idx])
            | (held.price_cents[hs] != rows.price_cents[idx])
        )
        paths_differ = np.fromiter(
            (
                held.category_paths[h] != rows.category_paths[i]
                for h, i in zip(hs.tolist(), idx.tolist(), strict=True)
            ),
            bool,
            len(idx),
        )
        stale.extend(rows.pks[idx[differs | paths_differ]].tolist())
    extra = held.pks[~seen].tolist()
    report = ConsistencyReport(checked=checked, missing=missing, stale=stale, extra=extra)
    if repair and not report.consistent:
        faiss_items_apply(item_pks=missing + stale + extra)
        report.repaired = True
    return report

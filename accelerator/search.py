"""The live index of one process: a published version (immutable) plus an overlay of the delta segments that
came after it, and the filtered nearest-neighbour search over both.

- **Base.** The published FAISS index; its ids are slots 0..n-1, in pk order, so a pk finds its slot with a
  binary search. Filter fields are numpy arrays per slot.
- **Overlay.** Items changed since the build: their latest state (vector and filter fields, or "removed"),
  searched exactly (it is small: a rebuild folds it into the base). An item in the overlay is tombstoned in
  the base. This is how updates and removals work on HNSW, which has no `remove_ids`.
- **Filters** become a boolean mask over the base slots (a few numpy passes, ~1 ms per million slots):
  - a broad mask goes to FAISS as an `IDSelectorBitmap`, so HNSW only returns allowed items; its `efSearch`
    grows with the share of items the filter removes (adaptive over-fetch), up to EF_SEARCH_MAX;
  - a selective mask (at most EXACT_MAX_ALLOWED items, or under EXACT_FRACTION of the base) is searched
    exactly, by a flat scan whose selector skips the other slots: cheaper than the graph, and exact;
  - if HNSW still returns fewer than k items while more pass the filter, the search is redone exactly.
  So a selective filter never starves the list.

A LiveIndex is never modified: applying deltas returns a new one, so searches in other threads go on
undisturbed. FAISS releases the GIL while it searches, so threads serving requests search in parallel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

import faiss
import numpy as np

from accelerator.selectors import NO_PRICE, ItemRows
from accelerator.store import Delta, StoredVersion
from recommendations.retrieval.base import Candidate, HardFilters

# Index type by catalog size. Up to FLAT_MAX_ITEMS an exact IndexFlatIP answers a query in ~3 ms on this
# (slow, shared) 2-core machine: a flat scan costs ~0.25 us per vector here (bench/faiss_bench.py). Above,
# HNSW (M=32, efConstruction=80) answers in ~1-3 ms at 100k items.
FLAT_MAX_ITEMS = 10_000
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
# efSearch for an unfiltered query, raised to k when k is larger (HNSW returns at most efSearch results).
# 200: recall@100 ~0.98 at 100k items for ~3 ms (bench/faiss_bench.py); 128 gave 0.95.
EF_SEARCH = 200
EF_SEARCH_MAX = 2048
# A filter that leaves at most this many items (or under this share of the base) is answered exactly: a
# flat scan with an ID selector computes distances for the allowed items only (~0.25 us each here, plus
# ~1 ns per slot for the bitmap test), cheaper than a graph walk that must skip most of what it visits.
EXACT_MAX_ALLOWED = 10_000
EXACT_FRACTION = 0.02


@dataclass(frozen=True)
class _Overlay:
    seqs: dict[int, int]  # pk -> seq of the state kept (a later seq wins)
    pks: np.ndarray  # int64, sorted: the overlay items that are indexed (not removed)
    vectors: np.ndarray
    in_stock: np.ndarray
    price_cents: np.ndarray
    category_ids: np.ndarray


class LiveIndex:
    def __init__(
        self,
        *,
        stored: StoredVersion,
        base_live: np.ndarray | None = None,
        overlay: _Overlay | None = None,
        categories: list[tuple[str, ...]] | None = None,
        applied: frozenset[int] = frozenset(),
    ):
        self.stored = stored
        self.manifest = stored.manifest
        self.index = stored.index
        n = len(stored.pks)
        self.base_live = base_live if base_live is not None else np.ones(n, bool)
        self.categories = categories if categories is not None else list(stored.categories)
        self.overlay = overlay or _Overlay(
            seqs={},
            pks=np.zeros(0, np.int64),
            vectors=np.zeros((0, self.manifest.dim), np.float32),
            in_stock=np.zeros(0, bool),
            price_cents=np.zeros(0, np.int64),
            category_ids=np.zeros(0, np.int32),
        )
        self.applied = applied  # delta seqs applied on top of the base
        self.exact = self.manifest.index_type == "flat"
        # The base vectors, viewed (not copied) from the index's own storage, for exact searches.
        if n == 0:
            self.base_vectors = np.zeros((0, self.manifest.dim), np.float32)
        else:
            storage = self.index if self.exact else faiss.downcast_index(self.index.storage)
            self.base_vectors = faiss.rev_swig_ptr(storage.get_xb(), n * self.manifest.dim).reshape(
                n, self.manifest.dim
            )
        # The exact scan of the base: the flat index itself, or the HNSW index's flat storage.
        self.base_flat = self.index if self.exact else faiss.downcast_index(self.index.storage)
        self.overlay_flat = faiss.IndexFlatIP(self.manifest.dim)
        if len(self.overlay.pks):
            self.overlay_flat.add(self.overlay.vectors)
        self._default_masks: dict[bool, tuple[np.ndarray, np.ndarray, int]] = {}

    # --- applying deltas

    def with_deltas(self, deltas: list[Delta]) -> LiveIndex:
        """A new LiveIndex with `deltas` applied. For each item the state with the highest seq wins, so the
        order in which segments are found does not matter."""
        deltas = [d for d in deltas if d.seq not in self.applied and d.seq > self.manifest.delta_seq]
        if not deltas:
            return self
        ov = self.overlay
        seqs = dict(ov.seqs)
        # Current overlay states, by pk: (vector, in_stock, price, category_id) or None for removed.
        states: dict[int, tuple | None] = {pk: None for pk in ov.seqs}
        for i, pk in enumerate(ov.pks.tolist()):
            states[pk] = (ov.vectors[i], ov.in_stock[i], ov.price_cents[i], ov.category_ids[i])
        categories = list(self.categories)
        category_lookup = {c: i for i, c in enumerate(categories)}
        for delta in sorted(deltas, key=lambda d: d.seq):
            present = {int(pk): i for i, pk in enumerate(delta.rows.pks.tolist())}
            for pk in delta.item_pks.tolist():
                if seqs.get(pk, -1) >= delta.seq:
                    continue
                seqs[pk] = delta.seq
                i = present.get(pk)
                if i is None:
                    states[pk] = None
                    continue
                path = delta.rows.category_paths[i]
                if path not in category_lookup:
                    category_lookup[path] = len(categories)
                    categories.append(path)
                states[pk] = (
                    delta.rows.vectors[i],
                    delta.rows.in_stock[i],
                    delta.rows.price_cents[i],
                    category_lookup[path],
                )
        kept = sorted(pk for pk, state in states.items() if state is not None)
        dim = self.manifest.dim
        overlay = _Overlay(
            seqs=seqs,
            pks=np.array(kept, np.int64),
            vectors=np.array([states[pk][0] for pk in kept], np.float32).reshape(len(kept), dim),
            in_stock=np.array([states[pk][1] for pk in kept], bool),
            price_cents=np.array([states[pk][2] for pk in kept], np.int64),
            category_ids=np.array([states[pk][3] for pk in kept], np.int32),
        )
        base_live = self.base_live.copy()
        slots = self._base_slots(np.fromiter(seqs, np.int64, len(seqs)))
        base_live[slots] = False
        return LiveIndex(
            stored=self.stored,
            base_live=base_live,
            overlay=overlay,
            categories=categories,
            applied=self.applied | {d.seq for d in deltas},
        )

    def _base_slots(self, pks: np.ndarray) -> np.ndarray:
        """The base slots of those `pks` that are in the base."""
        base_pks = self.stored.pks
        if len(base_pks) == 0 or len(pks) == 0:
            return np.zeros(0, np.int64)
        slots = np.searchsorted(base_pks, pks)
        slots = np.minimum(slots, len(base_pks) - 1)
        return slots[base_pks[slots] == pks]

    # --- what the index holds (for the consistency check)

    def state(self) -> ItemRows:
        """Every item the index would return, with the state it holds for it, in pk order."""
        live = np.flatnonzero(self.base_live)
        cats = self.categories
        base = ItemRows(
            pks=self.stored.pks[live],
            vectors=self.base_vectors[live],
            in_stock=self.stored.in_stock[live],
            price_cents=self.stored.price_cents[live],
            category_paths=[cats[c] for c in self.stored.category_ids[live].tolist()],
        )
        ov = self.overlay
        overlay = ItemRows(
            pks=ov.pks,
            vectors=ov.vectors,
            in_stock=ov.in_stock,
            price_cents=ov.price_cents,
            category_paths=[cats[c] for c in ov.category_ids.tolist()],
        )
        merged = ItemRows.concat([base, overlay])
        order = np.argsort(merged.pks, kind="stable")
        return ItemRows(
            pks=merged.pks[order],
            vectors=merged.vectors[order],
            in_stock=merged.in_stock[order],
            price_cents=merged.price_cents[order],
            category_paths=[merged.category_paths[i] for i in order.tolist()],
        )

    @property
    def size(self) -> int:
        return int(np.count_nonzero(self.base_live)) + len(self.overlay.pks)

    # --- search

    def search(self, *, vector: np.ndarray, k: int, filters: HardFilters) -> list[Candidate]:
        if k <= 0:
            return []
        q = np.ascontiguousarray(vector, dtype=np.float32).reshape(1, -1)
        norm = float(np.linalg.norm(q))
        if norm > 0:
            q = q / norm
        mask, bitmap, allowed = self._mask(filters)
        base_pks, base_scores = self._search_base(q, k, mask, bitmap, allowed)
        ov = self.overlay
        if len(ov.pks):
            ov_mask = self._field_mask(filters, ov.in_stock, ov.price_cents, ov.category_ids)
            if filters.exclude_item_pks:
                ov_mask &= ~np.isin(ov.pks, np.fromiter(filters.exclude_item_pks, np.int64))
            ov_pks, ov_scores = _flat_search(self.overlay_flat, ov.pks, q, k, ov_mask)
            pks = np.concatenate([base_pks, ov_pks])
            scores = np.concatenate([base_scores, ov_scores])
        else:
            pks, scores = base_pks, base_scores
        order = np.lexsort((pks, -scores))[:k]
        return [Candidate(item_pk=int(pks[i]), distance=float(1.0 - scores[i])) for i in order]

    def _mask(self, filters: HardFilters) -> tuple[np.ndarray, np.ndarray | None, int]:
        """The allowed base slots: (mask, its bitmap for FAISS or None, count). The common case (no filter
        but stock) is computed once per LiveIndex."""
        s = self.stored
        narrowing = filters.category_prefix or filters.min_price is not None or filters.max_price is not None
        if not narrowing and not filters.exclude_item_pks:
            cached = self._default_masks.get(filters.in_stock_only)
            if cached is None:
                cached = _with_bitmap(
                    self.base_live & s.in_stock if filters.in_stock_only else self.base_live
                )
                self._default_masks[filters.in_stock_only] = cached
            return cached
        if narrowing:
            mask = self.base_live & self._field_mask(filters, s.in_stock, s.price_cents, s.category_ids)
        else:
            mask = self._mask(HardFilters(in_stock_only=filters.in_stock_only))[0].copy()
        if filters.exclude_item_pks:
            mask[self._base_slots(np.fromiter(sorted(filters.exclude_item_pks), np.int64))] = False
        return _with_bitmap(mask)

    def _field_mask(
        self, filters: HardFilters, in_stock: np.ndarray, price_cents: np.ndarray, category_ids: np.ndarray
    ) -> np.ndarray:
        mask = in_stock.copy() if filters.in_stock_only else np.ones(len(in_stock), bool)
        if filters.category_prefix:
            prefix = tuple(filters.category_prefix)
            lut = np.fromiter(
                (c[: len(prefix)] == prefix for c in self.categories), bool, len(self.categories)
            )
            mask &= lut[category_ids]
        if filters.min_price is not None:
            low = int((Decimal(filters.min_price) * 100).to_integral_value(rounding=ROUND_CEILING))
            mask &= price_cents >= low
        if filters.max_price is not None:
            high = int((Decimal(filters.max_price) * 100).to_integral_value(rounding=ROUND_FLOOR))
            mask &= (price_cents <= high) & (price_cents != NO_PRICE)
        return mask

    def _search_base(
        self, q: np.ndarray, k: int, mask: np.ndarray, bitmap: np.ndarray | None, allowed: int
    ) -> tuple[np.ndarray, np.ndarray]:
        n = len(mask)
        if allowed == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        if self.exact or allowed <= EXACT_MAX_ALLOWED or allowed < n * EXACT_FRACTION:
            return _flat_search(self.base_flat, self.stored.pks, q, k, mask, bitmap, allowed)
        want = min(k, allowed)
        # Over-fetch in proportion to what the filter removes: the graph walk must see more nodes to find
        # `want` allowed ones.
        ef = max(EF_SEARCH, want)
        ef = min(EF_SEARCH_MAX, max(ef, math.ceil(ef * min(n / allowed, 8.0))))
        params = faiss.SearchParametersHNSW()
        params.efSearch = ef
        if bitmap is not None:
            params.sel = faiss.IDSelectorBitmap(n, faiss.swig_ptr(bitmap))
        scores, ids = self.index.search(q, want, params=params)
        ids = ids[0]
        found = ids >= 0
        if int(np.count_nonzero(found)) < want:
            return _flat_search(self.base_flat, self.stored.pks, q, k, mask, bitmap, allowed)
        return self.stored.pks[ids[found]], scores[0][found]


def _with_bitmap(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, int]:
    allowed = int(np.count_nonzero(mask))
    bitmap = np.packbits(mask, bitorder="little") if allowed < len(mask) else None
    return mask, bitmap, allowed


def _flat_search(
    flat: faiss.Index,
    pks: np.ndarray,
    q: np.ndarray,
    k: int,
    mask: np.ndarray,
    bitmap: np.ndarray | None = None,
    allowed: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k by inner product among the slots where `mask` is set. The ID selector makes FAISS skip
    the others before computing their distances."""
    if allowed is None:
        mask, bitmap, allowed = _with_bitmap(mask)
    want = min(k, allowed)
    if want == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    params = faiss.SearchParameters()
    if bitmap is not None:
        # `bitmap` must outlive the search: the selector points into it (the caller holds it).
        params.sel = faiss.IDSelectorBitmap(len(mask), faiss.swig_ptr(bitmap))
    scores, ids = flat.search(q, want, params=params)
    found = ids[0] >= 0
    return pks[ids[0][found]], scores[0][found]

"""Reads from Postgres for the index: the vectors and filter fields of the items the index should hold.

An item belongs in the index when it is active and has a vector of the current embedding model. Out of stock
items stay in it (a search with `in_stock_only=False` may return them); the stock state is a filter field.

The rows come through retrieval's interface (recommendations/retrieval/catalog_access.py), read with a
binary cursor: parsing pgvector's text format costs about 20x more than unpacking its binary one, which
matters at a million rows.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
from django.conf import settings

from recommendations.retrieval.catalog_access import (
    item_vector_rows_for_pks,
    item_vector_rows_stream,
    model_item_vector_rows,
)

# Rows fetched per round trip by the build's server-side cursor: 10,000 rows x 384-d is ~16 MB per batch.
# Measured with it (bench/faiss_bench.py, `read_s` of the build): 100k items read in ~6 s on the shared
# 2-core machine, most of it unpacking rows in Python; the batch size itself matters little above ~1,000.
ITEM_ROWS_BATCH_SIZE = 10_000
# Stand-in for a missing price: below any real price, and excluded explicitly by a max_price filter.
NO_PRICE = np.iinfo(np.int64).min


@dataclass(frozen=True)
class ItemRows:
    """Items as the index sees them, sorted by pk. Vectors are float32 and L2-normalised."""

    pks: np.ndarray  # int64 (m,)
    vectors: np.ndarray  # float32 (m, dim)
    in_stock: np.ndarray  # bool (m,): in_stock and (stock unknown or > 0)
    price_cents: np.ndarray  # int64 (m,), NO_PRICE when unknown
    category_paths: list[tuple[str, ...]]

    def __len__(self) -> int:
        return len(self.pks)

    @classmethod
    def empty(cls) -> ItemRows:
        return cls(
            pks=np.zeros(0, np.int64),
            vectors=np.zeros((0, settings.EMBEDDING_DIM), np.float32),
            in_stock=np.zeros(0, bool),
            price_cents=np.zeros(0, np.int64),
            category_paths=[],
        )

    @classmethod
    def concat(cls, parts: Sequence[ItemRows]) -> ItemRows:
        if not parts:
            return cls.empty()
        return cls(
            pks=np.concatenate([p.pks for p in parts]),
            vectors=np.concatenate([p.vectors for p in parts]),
            in_stock=np.concatenate([p.in_stock for p in parts]),
            price_cents=np.concatenate([p.price_cents for p in parts]),
            category_paths=[c for p in parts for c in p.category_paths],
        )


def price_to_cents(price: Decimal | None) -> int:
    return NO_PRICE if price is None else int((price * 100).to_integral_value())


def vectors_normalise(vectors: np.ndarray) -> np.ndarray:
    """Unit rows, so that inner product = cosine similarity (what pgvector's `<=>` measures)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (vectors / norms).astype(np.float32, copy=False)


def _vector_from_db(value) -> np.ndarray:
    # pgvector's binary format: uint16 dim, uint16 unused, then dim big-endian float32.
    if isinstance(value, bytes | bytearray | memoryview):
        return np.frombuffer(value, dtype=">f4", offset=4)
    return np.asarray(value, dtype=np.float32)  # a loader registered by someone else already parsed it


def _rows_from_tuples(rows: list[tuple]) -> ItemRows:
    if not rows:
        return ItemRows.empty()
    vectors = np.stack([_vector_from_db(r[1]) for r in rows]).astype(np.float32)
    return ItemRows(
        pks=np.fromiter((r[0] for r in rows), np.int64, len(rows)),
        vectors=vectors_normalise(vectors),
        in_stock=np.fromiter((bool(r[2]) and (r[3] is None or r[3] > 0) for r in rows), bool, len(rows)),
        price_cents=np.fromiter((price_to_cents(r[4]) for r in rows), np.int64, len(rows)),
        category_paths=[tuple(r[5] or ()) for r in rows],
    )


def item_rows_stream(*, batch_size: int = ITEM_ROWS_BATCH_SIZE) -> Iterator[ItemRows]:
    """Every item the index should hold, in pk order, in batches. One statement, so one consistent snapshot
    of the table. Runs inside a transaction (a server-side cursor needs one)."""
    for rows in item_vector_rows_stream(batch_size=batch_size):
        yield _rows_from_tuples(rows)


def model_item_rows(*, table: str, version_id: int) -> ItemRows:
    """The item vectors of one two-tower version (`table`: retrieval's MODEL_VECTOR_TABLE) of the active
    items, with the items' filter fields, in pk order. One query, binary."""
    return _rows_from_tuples(model_item_vector_rows(table=table, version_id=version_id))


def item_rows_for_pks(*, item_pks: Sequence[int]) -> ItemRows:
    """The given items that belong in the index (the others are absent: deactivated, not embedded yet,
    or embedded with another model), in pk order."""
    if not item_pks:
        return ItemRows.empty()
    return _rows_from_tuples(item_vector_rows_for_pks(item_pks=item_pks))

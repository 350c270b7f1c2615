"""The vector-backend interface that retrieval depends on. pgvector implements it in
`recommendations.retrieval.pgvector_backend`; the FAISS accelerator app implements it too, and is chosen
only through `settings.RECSYS_VECTOR_BACKEND` (DESIGN.md §2: nothing imports the accelerator directly).

The contract, for every backend:
- `search` returns up to `k` nearest items by cosine distance (0 = same direction), nearest first, ties
  broken by item pk ascending, among items that pass every hard filter: active, in stock (unless
  `filters.in_stock_only` is False), category path prefix, price range, not excluded, and with a vector of
  the current embedding model. Distances are included.
- A selective filter never starves the list: if at least `k` items pass the filters, `k` come back.

A search runs in one vector space: `CONTENT` (the items' content vectors, `catalog_item.embedding` of the
current embedding model; the default) or `ModelSpace(version_id)` (the item-tower vectors of one two-tower
version, `recommendations.models.ModelItemVector`). In a model space an item needs a vector of that version
instead of a content vector; every other filter is the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol, TypeAlias

import numpy as np


@dataclass(frozen=True)
class HardFilters:
    """Filters applied inside retrieval (not after it), so they never shorten the list."""

    category_prefix: tuple[str, ...] = ()
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    exclude_item_pks: frozenset[int] = field(default_factory=frozenset)
    in_stock_only: bool = True


@dataclass(frozen=True)
class Candidate:
    item_pk: int
    distance: float  # cosine distance, in [0, 2]


@dataclass(frozen=True)
class ContentSpace:
    """The items' content vectors (catalog_item.embedding, current embedding model)."""


@dataclass(frozen=True)
class ModelSpace:
    """The item vectors of one two-tower model version (its own partial HNSW index in pgvector)."""

    version_id: int


Space: TypeAlias = ContentSpace | ModelSpace
CONTENT = ContentSpace()


class VectorBackend(Protocol):
    name: str

    def search(
        self, *, vector: np.ndarray, k: int, filters: HardFilters, space: Space = CONTENT
    ) -> list[Candidate]:
        """The `k` nearest items to `vector` (L2-normalised, of the space's dimension) that pass `filters`,
        among the vectors of `space`."""
        ...

    def items_changed(self, *, item_pks: list[int]) -> None:
        """Items were created, re-embedded, changed or deactivated. Backends that keep their own index
        bring it up to date (asynchronously is fine); pgvector, which reads the table, does nothing."""
        ...

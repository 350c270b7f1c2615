"""The candidates that flow through the re-ranking steps: one numpy array per feature (columns), one row per
candidate. A step takes a `Candidates` and returns a new one (`take`, `with_score`, `with_columns`); it
never changes the arrays it was given. Only the answer's few rows become Python objects (`Scored`)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime, timedelta
from typing import Any, overload

import numpy as np

# `published` is in microseconds since the Unix epoch (integers: ages computed from it are exact, as with
# datetimes); this marks an item of unknown age.
NO_TIME = np.iinfo(np.int64).min
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


def time_us(moment: datetime) -> int:
    """A timezone-aware datetime as microseconds since the Unix epoch."""
    return (moment - _EPOCH) // _US


@dataclass(frozen=True)
class Scored:
    """One candidate as a row: the answer's items, and how tests write candidates (`Candidates.from_rows`)."""

    pk: int
    score: float
    category_path: tuple[str, ...] = ()
    brand: str = ""
    available: bool = True
    stock: int | None = None
    published_at: datetime | None = None  # published_at, else when the catalog first saw it
    interaction_count: int = 0
    vector: np.ndarray | None = field(default=None, compare=False, repr=False)
    promotion_id: int = 0  # the first live promotion the item matches (0: none)
    pinned_slot: int | None = None
    explored: bool = False

    @property
    def promoted(self) -> bool:
        return self.promotion_id != 0

    @property
    def reason(self) -> dict[str, Any] | None:
        """A promoted item is explained by its promotion; the others by the scenario (None here)."""
        return {"type": "promoted", "promotion_id": self.promotion_id} if self.promotion_id else None


@dataclass(frozen=True, eq=False)
class Candidates:
    """Candidates as columns, all of the same length. `stock` is 0 when not tracked (a stock of 0 or below
    is never "low": the item is unavailable instead). `vectors` has a row for every candidate, zeros where
    `has_vector` is False (a zero row is dissimilar to everything). `pinned_slot` is 0 when not pinned."""

    pk: np.ndarray  # int64
    score: np.ndarray  # float64
    available: np.ndarray  # bool
    stock: np.ndarray  # int64
    published: np.ndarray  # int64, microseconds since the epoch, NO_TIME when unknown
    interactions: np.ndarray  # int64
    category: np.ndarray  # object: tuple[str, ...] (full path)
    brand: np.ndarray  # object: str
    vectors: np.ndarray  # float32, (n, dim)
    has_vector: np.ndarray  # bool
    promotion_id: np.ndarray  # int64
    pinned_slot: np.ndarray  # int64
    explored: np.ndarray  # bool

    @classmethod
    def build(
        cls,
        *,
        pk: np.ndarray,
        score: np.ndarray,
        available: np.ndarray,
        stock: np.ndarray,
        published: np.ndarray,
        interactions: np.ndarray,
        category: np.ndarray,
        brand: np.ndarray,
        vectors: np.ndarray,
        has_vector: np.ndarray,
    ) -> Candidates:
        """Candidates as the features give them: nothing promoted, pinned or explored yet."""
        n = len(pk)
        return cls(
            pk=pk,
            score=score,
            available=available,
            stock=stock,
            published=published,
            interactions=interactions,
            category=category,
            brand=brand,
            vectors=vectors,
            has_vector=has_vector,
            promotion_id=np.zeros(n, np.int64),
            pinned_slot=np.zeros(n, np.int64),
            explored=np.zeros(n, bool),
        )

    @classmethod
    def from_rows(cls, rows: Sequence[Scored], *, dim: int | None = None) -> Candidates:
        """Columns from rows (tests, and the few places that start from rows)."""
        if dim is None:
            dim = next((len(r.vector) for r in rows if r.vector is not None), 0)
        vectors = np.zeros((len(rows), dim), np.float32)
        for i, r in enumerate(rows):
            if r.vector is not None:
                vectors[i] = r.vector
        return cls(
            pk=np.array([r.pk for r in rows], np.int64),
            score=np.array([r.score for r in rows], np.float64),
            available=np.array([r.available for r in rows], bool),
            stock=np.array([r.stock or 0 for r in rows], np.int64),
            published=np.array(
                [NO_TIME if r.published_at is None else time_us(r.published_at) for r in rows], np.int64
            ),
            interactions=np.array([r.interaction_count for r in rows], np.int64),
            category=objects([tuple(r.category_path) for r in rows]),
            brand=objects([r.brand for r in rows]),
            vectors=vectors,
            has_vector=np.array([r.vector is not None for r in rows], bool),
            promotion_id=np.array([r.promotion_id for r in rows], np.int64),
            pinned_slot=np.array([r.pinned_slot or 0 for r in rows], np.int64),
            explored=np.array([r.explored for r in rows], bool),
        )

    def __len__(self) -> int:
        return len(self.pk)

    def __iter__(self) -> Iterator[Scored]:
        return (self.row(i) for i in range(len(self)))

    @overload
    def __getitem__(self, i: int) -> Scored: ...
    @overload
    def __getitem__(self, i: slice) -> list[Scored]: ...
    def __getitem__(self, i: int | slice) -> Scored | list[Scored]:
        """A row, or a list of rows (for reading an answer: steps select with `take`)."""
        if isinstance(i, slice):
            return [self.row(j) for j in range(*i.indices(len(self)))]
        return self.row(i if i >= 0 else len(self) + i)

    def row(self, i: int) -> Scored:
        published = int(self.published[i])
        slot = int(self.pinned_slot[i])
        return Scored(
            pk=int(self.pk[i]),
            score=float(self.score[i]),
            category_path=self.category[i],
            brand=self.brand[i],
            available=bool(self.available[i]),
            stock=int(self.stock[i]),
            published_at=None if published == NO_TIME else _EPOCH + published * _US,
            interaction_count=int(self.interactions[i]),
            vector=self.vectors[i] if self.has_vector[i] else None,
            promotion_id=int(self.promotion_id[i]),
            pinned_slot=slot or None,
            explored=bool(self.explored[i]),
        )

    def take(self, index: np.ndarray | slice) -> Candidates:
        """The rows at `index` (indices, a boolean mask or a slice), in that order."""
        return Candidates(**{name: getattr(self, name)[index] for name in _COLUMNS})

    def with_score(self, score: np.ndarray) -> Candidates:
        return replace(self, score=score)

    def with_columns(self, **columns: np.ndarray) -> Candidates:
        return replace(self, **columns)

    def by_score(self) -> Candidates:
        """Best first; ties broken by pk so that answers are stable."""
        return self.take(order_by_score(self.score, self.pk))

    def without(self, pks: np.ndarray) -> Candidates:
        """The rows whose pk is not in `pks`."""
        return self.take(~member(self.pk, pks)) if len(pks) else self


def concat(parts: Sequence[Candidates]) -> Candidates:
    """The rows of `parts`, one after the other."""
    parts = [p for p in parts if len(p)] or list(parts[:1])  # an empty part may have another vector width
    return Candidates(**{name: np.concatenate([getattr(p, name) for p in parts]) for name in _COLUMNS})


_COLUMNS = tuple(f.name for f in fields(Candidates))


def member(values: np.ndarray, pks: np.ndarray) -> np.ndarray:
    """`np.isin(values, pks)` for int64 pks, by binary search in the sorted `pks`. np.isin picks its
    lookup-table method for integers, which allocates a table spanning the pks' whole range (a catalog's
    100,000 pks for a few hundred candidates): about 0.1 ms a call, against about 10 µs here."""
    if not len(values) or not len(pks):
        return np.zeros(len(values), dtype=bool)
    ordered = np.sort(pks)
    at = np.searchsorted(ordered, values)
    at[at == len(ordered)] = 0  # past the largest: compared with any pk, it is not equal
    return ordered[at] == values


def order_by_score(score: np.ndarray, pk: np.ndarray) -> np.ndarray:
    """Indices that sort best first, ties by pk."""
    return np.lexsort((pk, -score))


def objects(values: Sequence[Any]) -> np.ndarray:
    """An object array of these values (tuples stay whole: np.array would make a 2-D array of them)."""
    return np.fromiter(values, dtype=object, count=len(values))


def cosine(a: np.ndarray | None, b: np.ndarray | None) -> float:
    """Cosine similarity of two L2-normalised vectors; 0 when either is missing."""
    if a is None or b is None:
        return 0.0
    return float(np.dot(a, b))

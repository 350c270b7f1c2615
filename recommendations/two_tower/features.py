"""The model's inputs as arrays: item features (content vector, hashed category and brand, price) and the
users' sequences (distinct items in the order first met, newest last, with event type and age).

Training, offline evaluation and serving build sequences with the same function (`sequence_encode`), so
what the user tower sees on the request path is what it was trained on.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from django.conf import settings

from catalog.models import Item

EVENT_TYPES = ("view", "click", "add_to_favorites", "add_to_cart", "contact_seller", "purchase", "review")
TYPE_INDEX = {t: i + 1 for i, t in enumerate(EVENT_TYPES)}  # 0 = padding
# Age of a history item relative to the newest one, in log2-hour buckets: 1 = same hour ... 16 = years.
AGE_BUCKETS = 16
PAD = -1


def hash_bucket(text: str, buckets: int) -> int:
    """A stable bucket in 1..buckets for a non-empty string (0 = absent). crc32, not hash(): Python's
    string hash changes between processes, and the bucket must be the same in training and serving."""
    if not text:
        return 0
    return zlib.crc32(text.strip().lower().encode()) % buckets + 1


@dataclass
class ItemFeatures:
    """Per item index: the L2-normalised content vector (zeros when the item has none), the hashed first
    two category levels, the hashed brand and the price (NaN when unknown)."""

    pks: np.ndarray  # int64
    content: np.ndarray  # float32 (n, EMBEDDING_DIM)
    category: np.ndarray  # int64 (n, 2)
    brand: np.ndarray  # int64 (n,)
    price: np.ndarray  # float64 (n,)

    def take(self, index: np.ndarray) -> ItemFeatures:
        return ItemFeatures(
            pks=self.pks[index],
            content=self.content[index],
            category=self.category[index],
            brand=self.brand[index],
            price=self.price[index],
        )


def item_features_load(*, item_pks: Sequence[int], cat_buckets: int, brand_buckets: int) -> ItemFeatures:
    """The features of these items, in the given order (items that no longer exist get empty features)."""
    pks = np.asarray(item_pks, dtype=np.int64)
    index = {int(pk): i for i, pk in enumerate(pks)}
    n = len(pks)
    content = np.zeros((n, settings.EMBEDDING_DIM), dtype=np.float32)
    category = np.zeros((n, 2), dtype=np.int64)
    brand = np.zeros(n, dtype=np.int64)
    price = np.full(n, np.nan)
    rows = Item.objects.filter(pk__in=[int(p) for p in pks]).values_list(
        "pk", "embedding", "category_path", "brand", "price"
    )
    for pk, vector, path, brand_name, item_price in rows.iterator(chunk_size=2000):
        i = index[pk]
        if vector is not None:
            v = np.asarray(vector, dtype=np.float32)
            norm = float(np.linalg.norm(v))
            if norm > 0:
                content[i] = v / norm
        path = list(path or [])
        for level in range(min(2, len(path))):
            category[i, level] = hash_bucket(" > ".join(path[: level + 1]), cat_buckets)
        brand[i] = hash_bucket(brand_name or "", brand_buckets)
        price[i] = float(item_price) if item_price is not None else np.nan
    return ItemFeatures(pks=pks, content=content, category=category, brand=brand, price=price)


def price_boundaries_fit(prices: np.ndarray, buckets: int) -> list[float]:
    """Quantile boundaries of log(1 + price) over the known prices (buckets - 1 of them)."""
    known = np.log1p(prices[np.isfinite(prices) & (prices >= 0)])
    if len(known) == 0:
        return []
    return [float(q) for q in np.unique(np.quantile(known, np.linspace(0, 1, buckets + 1)[1:-1]))]


def price_buckets(prices: np.ndarray, boundaries: Sequence[float]) -> np.ndarray:
    """1..len(boundaries)+1 by quantile; 0 for an unknown price."""
    out = np.zeros(len(prices), dtype=np.int64)
    known = np.isfinite(prices) & (prices >= 0)
    out[known] = np.searchsorted(np.asarray(boundaries, dtype=np.float64), np.log1p(prices[known])) + 1
    return out


def age_bucket(seconds: float) -> int:
    hours = max(seconds, 0.0) / 3600.0
    return min(AGE_BUCKETS, int(math.log2(1.0 + hours)) + 1)


@dataclass
class Encoded:
    """Sequences as fixed-width rows, newest item last, left-padded with PAD (types/ages 0)."""

    items: np.ndarray  # int64 (b, max_len), item indices
    types: np.ndarray  # int64 (b, max_len)
    ages: np.ndarray  # int64 (b, max_len)


def distinct_first(items: Sequence[int], types: Sequence[str], ts: Sequence[float]):
    """Distinct items in the order first met, with the event type and time of that first meeting."""
    seen: set[int] = set()
    out_items, out_types, out_ts = [], [], []
    for item, kind, t in zip(items, types, ts, strict=True):
        if item in seen:
            continue
        seen.add(item)
        out_items.append(int(item))
        out_types.append(TYPE_INDEX.get(str(kind), 1))
        out_ts.append(float(t))
    return out_items, out_types, out_ts


def sequence_encode(items: list[int], types: list[int], ts: list[float], *, max_len: int) -> Encoded:
    """One row from a distinct, time-ordered history (as returned by `distinct_first`): its last max_len
    items, ages measured from the newest."""
    items, types, ts = items[-max_len:], types[-max_len:], ts[-max_len:]
    row_items = np.full((1, max_len), PAD, dtype=np.int64)
    row_types = np.zeros((1, max_len), dtype=np.int64)
    row_ages = np.zeros((1, max_len), dtype=np.int64)
    n = len(items)
    if n:
        newest = ts[-1]
        row_items[0, max_len - n :] = items
        row_types[0, max_len - n :] = types
        row_ages[0, max_len - n :] = [age_bucket(newest - t) for t in ts]
    return Encoded(items=row_items, types=row_types, ages=row_ages)


@dataclass
class Examples:
    """Next-item examples: a history (encoded) and the item that came next."""

    history: Encoded
    target: np.ndarray  # int64
    seen: list[np.ndarray] | None = None  # every earlier item of the actor (validation: not ranked)


def examples_build(
    *,
    actors: np.ndarray,
    item_idx: np.ndarray,
    ts: np.ndarray,
    event_type: np.ndarray,
    rows: np.ndarray,
    max_len: int,
    holdout_actors: set[str],
) -> tuple[Examples, Examples]:
    """Training examples from `rows` (indices into the time-ordered event arrays): for every actor, each
    distinct item after the first is a target with the items before it as history. For the actors in
    `holdout_actors`, the last target is kept out of training: it is the validation example."""
    rows = np.asarray(rows, dtype=np.int64)
    order = rows[np.argsort(actors[rows], kind="stable")]  # grouped by actor, time order kept
    keys, starts = np.unique(actors[order], return_index=True)
    bounds = [*starts.tolist(), len(order)]
    per_actor = []
    n_train = n_valid = 0
    for a, actor in enumerate(keys):
        group = order[bounds[a] : bounds[a + 1]]
        items, types, times = distinct_first(item_idx[group], event_type[group], ts[group])
        if len(items) < 2:
            continue
        holdout = str(actor) in holdout_actors and len(items) >= 3
        per_actor.append((items, types, times, holdout))
        n_train += len(items) - 1 - int(holdout)
        n_valid += int(holdout)

    def alloc(n: int) -> Examples:
        return Examples(
            history=Encoded(
                items=np.full((n, max_len), PAD, dtype=np.int64),
                types=np.zeros((n, max_len), dtype=np.int64),
                ages=np.zeros((n, max_len), dtype=np.int64),
            ),
            target=np.zeros(n, dtype=np.int64),
        )

    train, valid = alloc(n_train), alloc(n_valid)
    valid.seen = []
    ti = vi = 0
    for items, types, times, holdout in per_actor:
        times_arr = np.asarray(times)
        last = len(items) - 1
        for t in range(1, len(items)):
            lo = max(0, t - max_len)
            n = t - lo
            is_valid = holdout and t == last
            out, i = (valid, vi) if is_valid else (train, ti)
            out.history.items[i, max_len - n :] = items[lo:t]
            out.history.types[i, max_len - n :] = types[lo:t]
            hours = (times_arr[t - 1] - times_arr[lo:t]) / 3600.0
            out.history.ages[i, max_len - n :] = np.minimum(
                AGE_BUCKETS, np.log2(1.0 + np.maximum(hours, 0.0)).astype(np.int64) + 1
            )
            out.target[i] = items[t]
            if is_valid:
                valid.seen.append(np.asarray(items[:t], dtype=np.int64))
                vi += 1
            else:
                ti += 1
    return train, valid

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
from numpy.lib.stride_tricks import sliding_window_view

from catalog.selectors import item_feature_rows
from core import payloads

# the one list of event types; a trained model's type embedding is indexed by its order, so it only grows
EVENT_TYPES = payloads.EVENT_TYPES
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
    for pk, vector, path, brand_name, item_price in item_feature_rows(item_pks=[int(p) for p in pks]):
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
    strict: bool = True,
) -> tuple[Examples, Examples]:
    """Training examples from `rows` (indices into the time-ordered event arrays): for every actor, each
    distinct item after the first is a target with the items before it as history (`strict`: only those
    met at an earlier moment). For the actors in `holdout_actors`, the last target is kept out of
    training: it is the validation example (its history always strict, like the test protocols)."""
    rows = np.asarray(rows, dtype=np.int64)
    order = rows[np.argsort(actors[rows], kind="stable")]  # grouped by actor, time order kept
    keys, starts = np.unique(actors[order], return_index=True)
    bounds = [*starts.tolist(), len(order)]
    train_parts, valid_parts, seen = [], [], []
    for a, actor in enumerate(keys):
        group = order[bounds[a] : bounds[a + 1]]
        items, types, times = distinct_first(item_idx[group], event_type[group], ts[group])
        n = len(items)
        if n < 2:
            continue
        times_arr = np.asarray(times)
        # The history of target t: the items met strictly before it (not its basket-mates of the same
        # moment), as the evaluation protocols and serving see a user before their next visit.
        strict_ends = np.searchsorted(times_arr, times_arr, side="left")[1:]
        ends = strict_ends if strict else np.arange(1, n)
        views = (
            sliding_window_view(np.array([PAD] * max_len + items, dtype=np.int64), max_len),
            sliding_window_view(np.array([0] * max_len + types, dtype=np.int64), max_len),
            sliding_window_view(np.concatenate([np.full(max_len, np.nan), times_arr]), max_len),
        )
        win_items, win_types, ages = _windows(views, ends)
        targets = np.asarray(items[1:], dtype=np.int64)
        keep = ends > 0
        holdout = str(actor) in holdout_actors and n >= 3 and strict_ends[-1] > 0
        if holdout:
            valid_parts.append((*_windows(views, strict_ends[-1:]), targets[-1:]))
            seen.append(np.asarray(items[: strict_ends[-1]], dtype=np.int64))
            keep[-1] = False
        train_parts.append((win_items[keep], win_types[keep], ages[keep], targets[keep]))

    def stack(parts) -> Examples:
        if not parts:
            empty = np.zeros((0, max_len), dtype=np.int64)
            return Examples(history=Encoded(empty, empty, empty), target=np.zeros(0, dtype=np.int64))
        return Examples(
            history=Encoded(
                items=np.concatenate([p[0] for p in parts]),
                types=np.concatenate([p[1] for p in parts]),
                ages=np.concatenate([p[2] for p in parts]),
            ),
            target=np.concatenate([p[3] for p in parts]),
        )

    valid = stack(valid_parts)
    valid.seen = seen
    return stack(train_parts), valid


def _windows(views, ends: np.ndarray):
    """Rows ending just before each index of `ends`: items, types and age buckets (from the newest)."""
    win_items, win_types, win_ts = (v[ends] for v in views)
    hours = np.nan_to_num((win_ts[:, -1:] - win_ts) / 3600.0, nan=0.0)
    ages = np.minimum(AGE_BUCKETS, np.log2(1.0 + np.maximum(hours, 0.0)).astype(np.int64) + 1)
    ages[win_items < 0] = 0
    return win_items, win_types, ages

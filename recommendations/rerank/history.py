"""The user's history: hide what they already bought or saw, where the scenario asks for it."""

from __future__ import annotations

from collections.abc import Collection

import numpy as np

from recommendations.rerank.candidates import Candidates


def history_exclude(
    candidates: Candidates,
    *,
    bought_pks: Collection[int],
    seen_pks: Collection[int],
    exclude_bought: bool,
    exclude_seen: bool,
) -> Candidates:
    hidden: set[int] = set()
    if exclude_bought:
        hidden.update(bought_pks)
    if exclude_seen:
        hidden.update(seen_pks)
    return candidates.without(np.fromiter(hidden, np.int64, len(hidden)))

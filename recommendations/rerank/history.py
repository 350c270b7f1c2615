"""The user's history: hide what they already bought or saw, where the scenario asks for it."""

from __future__ import annotations

from collections.abc import Collection

from recommendations.rerank.candidates import Scored


def history_exclude(
    candidates: list[Scored],
    *,
    bought_pks: Collection[int],
    seen_pks: Collection[int],
    exclude_bought: bool,
    exclude_seen: bool,
) -> list[Scored]:
    hidden: set[int] = set()
    if exclude_bought:
        hidden.update(bought_pks)
    if exclude_seen:
        hidden.update(seen_pks)
    if not hidden:
        return list(candidates)
    return [c for c in candidates if c.pk not in hidden]

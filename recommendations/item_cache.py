"""Pre-computed item lists: each item's ranked candidates for the item page (`similar`) and for a session of
that one item (`session`), computed by the worker for the default profile and no request filters, BEFORE
the request's hard filters and the live business rules (docs/serving-cache.md, "Item pages and one-item
sessions"). The item-keyed counterpart of candidate_cache.

- Computed on a miss (the request queues the item, coalesced; the live path answers meanwhile), by a sweep
  every minute for the RECSYS_ITEM_CACHE_PRECOMPUTE_TOP most popular items that have none and for the lists
  due (another key, a new vector of the item, older than RECSYS_ITEM_CACHE_REFRESH_SECONDS), and when items
  get a vector: their own lists, and the stored lists of their nearest items that the new item may enter
  (`item_lists_nearby`; a new item changes OTHER items' lists, which the item's own key cannot see).
- Served (recommendations.scenarios) only when still right: computed with the models and the profile's
  candidate settings serving now (`key_current`), with the item's current vector, with the item's current
  co-visitation when a ranker orders the list (a folded event makes it a miss), and younger than
  RECSYS_ITEM_CACHE_MAX_AGE_SECONDS. Otherwise, or when the request's filters leave fewer than `limit`
  items, the live path answers. Stock, prices, categories, promotions, re-ranking weights are applied live.
- An UNLOGGED Postgres table read in the query that reads the item's vector anyway (no extra round trip, no
  Redis on the serving path); every row can be rebuilt.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import OperationalError, connection
from django.utils import timezone

from catalog.embedding import current_model_name
from recommendations import candidate_cache
from recommendations.models import ItemCandidateList, RerankProfile, Scenario

logger = logging.getLogger(__name__)

SCENARIOS = (Scenario.SIMILAR, Scenario.SESSION)
# The sweep stops after this long (its beat entry runs every minute and expires after 55 s); it recomputes
# candidate_cache.SWEEP_BATCH items per batch.
SWEEP_TIME_BUDGET_SECONDS = 50
# At most this many changed items are looked around per task: a bulk import (thousands of new vectors)
# would recompute a large part of the catalog's lists; beyond this, the refresh age catches up.
NEARBY_MAX_ITEMS = 200
# How deep around a new item to look for the lists it may enter, in lists' lengths (`candidate_k`). A list
# the new item enters is not always one of its `candidate_k` nearest (where items crowd, the new item's own
# nearest are others); bench/serving_cache.py --staleness-only measured 39 of 363 such lists missed at 1,
# none at 3. The last-score check keeps the extra depth cheap: few deeper lists are recomputed.
NEARBY_DEPTH = 3


@dataclass
class Computed:
    """A freshly computed list (scenarios.item_candidates_compute), best first."""

    scenario: str
    key: str
    model_version: str
    item_pks: list[int]
    scores: list[float]
    reasons: list[dict[str, Any] | None]
    vector_at: datetime | None  # the item's embedded_at when read
    computed_at: datetime  # when the computation started


def enabled() -> bool:
    return bool(settings.RECSYS_ITEM_CACHE)


def stage_key(profile: RerankProfile) -> str:
    """The profile's settings that shape an item list (no history: seen and bought do not apply)."""
    return f"k={profile.candidate_k};stock={int(profile.in_stock_only)}"


def key_current(*, profile: RerankProfile) -> str:
    """As candidate_cache.key_current: the active ranker and two-tower versions, the content model and the
    profile's candidate settings. A promotion, a rollback or such a profile edit makes every list a miss."""
    return f"{candidate_cache.models_key()}|{stage_key(profile)}"


def max_age() -> timedelta:
    return timedelta(seconds=settings.RECSYS_ITEM_CACHE_MAX_AGE_SECONDS)


_UPSERT_SQL = """
INSERT INTO recommendations_itemcandidatelist AS c
    (item_id, scenario, key, vector_at, model_version, item_pks, scores, reasons, reason_index, computed_at,
     created_at, updated_at)
VALUES (%(item)s, %(scenario)s, %(key)s, %(vector_at)s, %(model)s, %(pks)s::bigint[], %(scores)s::float8[],
        %(reasons)s::jsonb, %(index)s::smallint[], %(at)s, now(), now())
ON CONFLICT (item_id, scenario) DO UPDATE SET
    key = EXCLUDED.key, vector_at = EXCLUDED.vector_at, model_version = EXCLUDED.model_version,
    item_pks = EXCLUDED.item_pks, scores = EXCLUDED.scores, reasons = EXCLUDED.reasons,
    reason_index = EXCLUDED.reason_index, computed_at = EXCLUDED.computed_at, updated_at = EXCLUDED.updated_at
-- two workers computing the same item: the older computation does not overwrite the newer one
WHERE c.computed_at <= EXCLUDED.computed_at
"""


def item_list_save(*, item_pk: int, computed: Computed) -> None:
    with connection.cursor() as cur:
        cur.execute(
            _UPSERT_SQL,
            {
                **candidate_cache.list_columns(computed),
                "item": item_pk,
                "scenario": computed.scenario,
                "vector_at": computed.vector_at,
            },
        )


def item_lists_delete(*, item_pks: Iterable[int], scenarios: Iterable[str] = SCENARIOS) -> int:
    deleted, _ = ItemCandidateList.objects.filter(
        item_id__in=list(item_pks), scenario__in=list(scenarios)
    ).delete()
    return deleted


def item_lists_refresh(*, item_pks: Iterable[int], scenarios: Iterable[str] = SCENARIOS) -> int:
    """Recompute these items' lists (an item the scenario cannot serve from, no vector and no ranker,
    loses its list). Safe to repeat. One item's failure is logged and does not stop the others; a database
    outage is raised (the task retries). Returns how many lists were stored."""
    from recommendations.scenarios import item_candidates_compute  # scenarios reads this module

    done = 0
    for item_pk in dict.fromkeys(int(pk) for pk in item_pks):
        for scenario in scenarios:
            try:
                computed = item_candidates_compute(item_pk=item_pk, scenario=scenario)
            except OperationalError:
                raise
            except Exception:  # noqa: BLE001 - one item's bad data must not stop the batch
                logger.exception("could not compute the %s list of item %r", scenario, item_pk)
                continue
            if computed is None:
                item_lists_delete(item_pks=[item_pk], scenarios=[scenario])
                continue
            item_list_save(item_pk=item_pk, computed=computed)
            done += 1
    return done


_DUE_SQL = """
SELECT l.item_id, bool_or(l.key <> %(key)s OR l.vector_at IS DISTINCT FROM i.embedded_at) AS urgent,
       min(l.computed_at) AS oldest
FROM recommendations_itemcandidatelist l JOIN catalog_item i ON i.id = l.item_id
WHERE i.is_active AND (l.key <> %(key)s OR l.vector_at IS DISTINCT FROM i.embedded_at
                       OR l.computed_at < %(refresh_before)s)
GROUP BY l.item_id
ORDER BY urgent DESC, oldest
"""
_POPULAR_MISSING_SQL = """
WITH top AS (
    SELECT p.item_id, p.score FROM recommendations_itempopularity p
    JOIN catalog_item i ON i.id = p.item_id AND i.is_active
    ORDER BY p.score DESC LIMIT %(top)s
)
SELECT item_id FROM top
WHERE NOT EXISTS (SELECT 1 FROM recommendations_itemcandidatelist l WHERE l.item_id = top.item_id)
ORDER BY score DESC
"""


def item_lists_due(*, profile: RerankProfile) -> list[int]:
    """The items whose lists need computing, most urgent first: lists that are a miss now (another key, an
    older vector of the item), then the most popular items without a list, then lists past the refresh
    age (co-visitation, popularity and new items far from the item drift), oldest first."""
    refresh_before = timezone.now() - timedelta(seconds=settings.RECSYS_ITEM_CACHE_REFRESH_SECONDS)
    with connection.cursor() as cur:
        cur.execute(_DUE_SQL, {"key": key_current(profile=profile), "refresh_before": refresh_before})
        rows = cur.fetchall()
        cur.execute(_POPULAR_MISSING_SQL, {"top": settings.RECSYS_ITEM_CACHE_PRECOMPUTE_TOP})
        popular = [pk for (pk,) in cur.fetchall()]
    urgent = [pk for pk, is_urgent, _ in rows if is_urgent]
    aged = [pk for pk, is_urgent, _ in rows if not is_urgent]
    return list(dict.fromkeys([*urgent, *popular, *aged]))


def item_lists_sweep(*, budget_seconds: float = SWEEP_TIME_BUDGET_SECONDS) -> int:
    """Catch up: recompute the due lists in batches until none is due or the budget is spent, then drop
    the lists too old to be served. Safe to repeat or to lose."""
    from recommendations.selectors import profile_for_surface

    due = item_lists_due(profile=profile_for_surface(surface=""))
    done = candidate_cache.due_refresh(
        due, lambda batch: item_lists_refresh(item_pks=batch), budget_seconds=budget_seconds
    )
    ItemCandidateList.objects.filter(computed_at__lt=timezone.now() - max_age()).delete()
    return done


def item_lists_nearby(*, item_pks: Iterable[int], before: datetime) -> list[int]:
    """The items whose stored lists (computed before `before`) these items, just given a vector, may have
    changed: the items themselves (those with a list), and, among each one's NEARBY_DEPTH x `candidate_k`
    nearest items, those whose list it may enter. A full list of content neighbours (no ranker, no
    two-tower) whose last score beats the new item's similarity cannot take it, and is left alone. This is
    an approximation (a list the new item enters is nearly always among its nearest items, not always: the
    sweep's refresh age bounds the rest), measured in bench/serving_cache.py --staleness-only."""
    from recommendations.retrieval import get_backend
    from recommendations.retrieval.base import HardFilters
    from recommendations.selectors import item_vectors, profile_for_surface

    pks = list(dict.fromkeys(int(pk) for pk in item_pks))[:NEARBY_MAX_ITEMS]
    profile = profile_for_surface(surface="")
    similarity: dict[int, float] = {}
    for pk, vector in item_vectors(item_pks=pks).items():
        filters = HardFilters(exclude_item_pks=frozenset([pk]), in_stock_only=profile.in_stock_only)
        for c in get_backend().search(vector=vector, k=NEARBY_DEPTH * profile.candidate_k, filters=filters):
            similarity[c.item_pk] = max(similarity.get(c.item_pk, -1.0), 1.0 - c.distance)
    rows = ItemCandidateList.objects.filter(
        item_id__in=[*pks, *similarity], computed_at__lt=before
    ).values_list("item_id", "model_version", "scores")
    content, own = current_model_name(), set(pks)
    due = []
    for item_pk, model_version, scores in rows:
        if item_pk not in own and model_version == content and len(scores) >= profile.candidate_k:
            if similarity[item_pk] <= scores[-1]:
                continue  # the new item would rank below the whole stored list
        due.append(item_pk)
    return list(dict.fromkeys(due))

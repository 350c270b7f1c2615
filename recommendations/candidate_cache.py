"""Pre-computed candidates, kept fresh by events: each active user's ranked candidate list (the hybrid
path's sources, ordered by the ranker: a few hundred pks with scores and source reasons), computed by the
worker BEFORE the request's hard filters and the live business rules.

- Computed when the user's events are applied to their vector (interactions.signals.user_vectors_changed),
  and by a sweep every minute for the users active within RECSYS_CANDIDATE_CACHE_ACTIVE_DAYS whose list is
  missing, was computed with other models or profile settings, predates their newest events, predates the
  newest item vector (a catalog change; at most every CATALOG_MIN_AGE), or is older than
  RECSYS_CANDIDATE_CACHE_REFRESH_SECONDS (co-visitation and popularity drift).
- Served (recommendations.scenarios) only when it is still right: it saw the user's newest event, it was
  computed with the models and the profile's candidate settings serving now (`key_current`), and it is
  younger than RECSYS_CANDIDATE_CACHE_MAX_AGE_SECONDS. Otherwise, or when the request's filters leave fewer
  than `limit` items, the live path answers. Stock, prices, categories, promotions, re-ranking weights,
  seen and bought are applied live on every request, so they never wait for a recomputation.
- It lives in an UNLOGGED Postgres table: one more join in the query that reads the user's history
  anyway, no Redis on the request path (serving works the same with Redis down), and nothing that cannot
  be rebuilt.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import OperationalError, connection
from django.utils import timezone

from catalog.embedding import current_model_name
from catalog.selectors import item_vectors_changed_at
from interactions.selectors import users_active
from recommendations.models import CandidateList, RerankProfile, Scenario
from recommendations.ranker import serving as ranker_serving
from recommendations.two_tower import serving as two_tower_serving

logger = logging.getLogger(__name__)

# The sweep recomputes this many lists per transaction-free batch, and stops after this long (its beat
# entry runs every minute and expires after 55 s).
SWEEP_BATCH = 50
SWEEP_TIME_BUDGET_SECONDS = 50
# A list computed before an item got its vector is recomputed by the sweep once it is this old.
CATALOG_MIN_AGE = timedelta(minutes=2)


@dataclass
class Computed:
    """A freshly computed list (scenarios.user_candidates_compute), best first."""

    key: str
    last_event_id: int
    scenario: str
    model_version: str
    item_pks: list[int]
    scores: list[float]
    reasons: list[dict[str, Any] | None]
    computed_at: datetime  # when the computation started (it read the history then)


def enabled() -> bool:
    return bool(settings.RECSYS_CANDIDATE_CACHE)


def stage_key(profile: RerankProfile) -> str:
    """The profile's settings that shape the candidate list itself (the rest applies at request time)."""
    return (
        f"k={profile.candidate_k};stock={int(profile.in_stock_only)};"
        f"bought={int(Scenario.USER in profile.exclude_bought_in)};"
        f"seen={int(Scenario.USER in profile.exclude_seen_in)}"
    )


def models_key() -> str:
    """The models a stored list was computed with: the active ranker and two-tower versions and the
    content-embedding model (both versions are cached per process for their ACTIVE_TTL_SECONDS, like the
    rest of serving). Shared with item_cache."""
    ranker = ranker_serving.ranker_active()
    two_tower = two_tower_serving.active_version()
    return (
        f"ranker={ranker.name if ranker is not None else ''}|"
        f"two_tower={two_tower.pk if two_tower is not None else ''}|"
        f"embedding={current_model_name()}"
    )


def key_current(*, profile: RerankProfile) -> str:
    """What a list must have been computed with to be served now: the models and the profile's candidate
    settings. A promotion, a rollback or a profile edit changes it, and every list computed before is a
    miss at once."""
    return f"{models_key()}|{stage_key(profile)}"


def max_age() -> timedelta:
    return timedelta(seconds=settings.RECSYS_CANDIDATE_CACHE_MAX_AGE_SECONDS)


_UPSERT_SQL = """
INSERT INTO recommendations_candidatelist AS c
    (user_id, key, last_event_id, scenario, model_version, item_pks, scores, reasons, reason_index,
     computed_at, created_at, updated_at)
VALUES (%(user)s, %(key)s, %(event)s, %(scenario)s, %(model)s, %(pks)s::bigint[], %(scores)s::float8[],
        %(reasons)s::jsonb, %(index)s::smallint[], %(at)s, now(), now())
ON CONFLICT (user_id) DO UPDATE SET
    key = EXCLUDED.key, last_event_id = EXCLUDED.last_event_id, scenario = EXCLUDED.scenario,
    model_version = EXCLUDED.model_version, item_pks = EXCLUDED.item_pks, scores = EXCLUDED.scores,
    reasons = EXCLUDED.reasons, reason_index = EXCLUDED.reason_index, computed_at = EXCLUDED.computed_at, updated_at = EXCLUDED.updated_at
-- two workers computing the same user: the one that saw fewer events does not overwrite the other
WHERE c.last_event_id <= EXCLUDED.last_event_id
"""


def list_columns(computed: Any) -> dict[str, Any]:
    """The stored columns every pre-computed list has (this module's and item_cache's), as the upserts'
    parameters: the pks and scores as array literals, and each distinct reason once (500 candidates share
    a few anchors: ~2 bytes a candidate, not ~50), pointed at by index."""
    distinct: dict[str, int] = {}
    index = []
    for reason in computed.reasons:
        index.append(-1 if reason is None else distinct.setdefault(json.dumps(reason), len(distinct)))
    if not distinct:
        index = []  # no source reasons at all (the single-retrieval path): nothing to point at
    return {
        "key": computed.key,
        "model": computed.model_version,
        "pks": "{" + ",".join(str(int(pk)) for pk in computed.item_pks) + "}",
        "scores": "{" + ",".join(repr(float(s)) for s in computed.scores) + "}",
        "reasons": "[" + ",".join(distinct) + "]",
        "index": "{" + ",".join(map(str, index)) + "}",
        "at": computed.computed_at,
    }


def candidate_list_save(*, user_id: str, computed: Computed) -> None:
    with connection.cursor() as cur:
        cur.execute(
            _UPSERT_SQL,
            {
                **list_columns(computed),
                "user": user_id,
                "event": computed.last_event_id,
                "scenario": computed.scenario,
            },
        )


def candidate_lists_delete(*, user_ids: Iterable[str]) -> int:
    deleted, _ = CandidateList.objects.filter(user_id__in=list(user_ids)).delete()
    return deleted


def candidate_lists_refresh(*, user_ids: Iterable[str]) -> int:
    """Recompute these users' lists (a user the personalised path cannot serve, without a vector or
    history, loses theirs). Safe to repeat. One user's failure is logged and does not stop the others;
    a database outage is raised (the task retries)."""
    from recommendations.scenarios import user_candidates_compute  # scenarios reads this module

    done = 0
    for user_id in dict.fromkeys(user_ids):
        try:
            computed = user_candidates_compute(user_id=user_id)
        except OperationalError:
            raise
        except Exception:  # noqa: BLE001 - one user's bad data must not stop the batch
            logger.exception("could not compute the candidate list of user %r", user_id)
            continue
        if computed is None:
            candidate_lists_delete(user_ids=[user_id])
            continue
        candidate_list_save(user_id=user_id, computed=computed)
        done += 1
    return done


def candidate_lists_due(*, profile: RerankProfile) -> list[str]:
    """The active users whose list needs computing: missing, computed with other models or settings, older
    than their vector (events applied since), or older than the refresh age. Most urgent first: those that
    would be a miss now, the most recently active first, then the oldest lists."""
    now = timezone.now()
    active = users_active(since=now - timedelta(days=settings.RECSYS_CANDIDATE_CACHE_ACTIVE_DAYS))
    if not active:
        return []
    key = key_current(profile=profile)
    rows = {
        user: (row_key, computed_at)
        for user, row_key, computed_at in CandidateList.objects.filter(
            user_id__in=[u for u, _ in active]
        ).values_list("user_id", "key", "computed_at")
    }
    refresh_before = now - timedelta(seconds=settings.RECSYS_CANDIDATE_CACHE_REFRESH_SECONDS)
    # new items reach the lists computed before them, but a list is not recomputed more often than this
    # for the catalog's sake (a shop that adds items every minute would keep the sweep busy otherwise)
    vectors_at = item_vectors_changed_at()
    catalog_before = min(vectors_at, now - CATALOG_MIN_AGE) if vectors_at is not None else None
    urgent, aged = [], []
    for user, changed_at in active:
        row = rows.get(user)
        if row is None or row[0] != key or row[1] < changed_at:
            urgent.append(user)
        elif row[1] < refresh_before or (catalog_before is not None and row[1] < catalog_before):
            aged.append((row[1], user))
    return urgent + [user for _, user in sorted(aged)]


def candidate_lists_sweep(*, budget_seconds: float = SWEEP_TIME_BUDGET_SECONDS) -> int:
    """Catch up: recompute the due lists in batches until none is due or the budget is spent, then drop the
    lists too old to be served. Safe to repeat or to lose."""
    from recommendations.selectors import profile_for_surface

    due = candidate_lists_due(profile=profile_for_surface(surface=""))
    done = due_refresh(
        due, lambda batch: candidate_lists_refresh(user_ids=batch), budget_seconds=budget_seconds
    )
    CandidateList.objects.filter(computed_at__lt=timezone.now() - max_age()).delete()
    return done


def due_refresh(due: list, refresh: Callable[[list], int], *, budget_seconds: float) -> int:
    """A sweep's catch-up, shared with item_cache: `refresh` the due keys SWEEP_BATCH at a time until none is
    left or `budget_seconds` are spent (the next sweep takes the rest); how many lists were computed."""
    started = time.monotonic()
    done = 0
    for start in range(0, len(due), SWEEP_BATCH):
        if time.monotonic() - started > budget_seconds:
            break
        done += refresh(due[start : start + SWEEP_BATCH])
    return done

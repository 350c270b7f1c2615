"""Writes of serving: the served-list log, item popularity, erasure of a user's lists, the admin audit."""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from django.db import connection, transaction
from django.db.models import Q

from interactions.selectors import event_weights
from recommendations.models import AuditEntry, ServedList

if TYPE_CHECKING:
    from recommendations.scenarios import Answer

# Popularity: events of the last POPULARITY_WINDOW_DAYS count, each halving in weight every
# POPULARITY_HALF_LIFE_DAYS, weighted by how much intent its type shows (`event_weight`, the one table).
POPULARITY_WINDOW_DAYS = 30
POPULARITY_HALF_LIFE_DAYS = 3.0
# One refresh at a time (two would do the same work twice); any constant unique to this job.
POPULARITY_LOCK_ID = 0x52454350  # "RECP"


# The served-list INSERT does not wait for its WAL flush (synchronous_commit off for this statement only):
# a crash may lose the last few hundred milliseconds of log, never corrupt it, and a request no longer
# waits for an fsync (the dominant cost of the INSERT on a busy disk). Events that point at a lost list are
# still stored; analytics counts them as "list unknown".
_SERVED_LIST_SQL = """
SET LOCAL synchronous_commit = off;
INSERT INTO recommendations_servedlist (
    recommendation_id, user_id, session_id, surface, scenario, profile_surface, profile_version, model_version,
    backend, experiment, variant, item_pks, item_ids, scores, reasons, created_at, updated_at
) VALUES (
    %(id)s, %(user_id)s, %(session_id)s, %(surface)s, %(scenario)s, %(profile_surface)s, %(profile_version)s,
    %(model_version)s, %(backend)s, %(experiment)s, %(variant)s, %(item_pks)s::bigint[], %(item_ids)s::varchar[],
    %(scores)s::float8[], %(reasons)s::jsonb, now(), now()
);
SET LOCAL synchronous_commit TO DEFAULT
"""


def served_list_log(
    *,
    answer: Answer,
    user_id: str,
    session_id: str,
    surface: str,
    model_version: str,
    backend: str,
    experiment_id: int | None = None,
    variant: str = "",
) -> None:
    """One round trip: the list exactly as served, under its recommendation_id, with the A/B experiment
    (its id) and arm it was served in, if any."""
    with connection.cursor() as cur:
        cur.execute(
            _SERVED_LIST_SQL,
            {
                "id": answer.recommendation_id,
                "user_id": user_id or "",
                "session_id": session_id or "",
                "surface": surface,
                "scenario": answer.scenario,
                "profile_surface": answer.profile,
                "profile_version": answer.profile_version,
                "model_version": model_version,
                "backend": backend,
                "experiment": experiment_id,
                "variant": variant,
                "item_pks": [item["pk"] for item in answer.items],
                "item_ids": [item["id"] for item in answer.items],
                "scores": [item["score"] for item in answer.items],
                "reasons": json.dumps([item["reason"] for item in answer.items]),
            },
        )


def served_lists_erase(*, user_id: str, session_ids: Collection[str] = ()) -> dict[str, int]:
    """Deletes the lists served to a user, and the anonymous lists of their sessions (part of erasing the
    user). Lists served to another user in the same session stay."""
    lists = ServedList.objects.filter(
        Q(user_id=user_id) | Q(user_id="", session_id__in=set(session_ids) - {""})
    )
    return {"served_lists": lists.delete()[0]}


def item_popularity_refresh() -> int | None:
    """Recomputes ItemPopularity from the events of the window, in one transaction; items without events
    in the window drop out. Returns the number of items with a score, or None when another refresh holds
    the lock (it does the same work). One statement over the window's events: ~1 s for 1M events on the
    embedded Postgres (2 shared cores)."""
    weights = event_weights()
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SELECT pg_try_advisory_xact_lock(%s)", [POPULARITY_LOCK_ID])
        if not cur.fetchone()[0]:
            return None
        cur.execute(
            """
            WITH weights(event_type, weight) AS (SELECT * FROM unnest(%s::text[], %s::float8[])),
            agg AS (
                SELECT e.item_id,
                       sum(COALESCE(w.weight, 0.0)
                           * power(0.5, extract(epoch FROM now() - e.timestamp) / 86400.0 / %s)) AS score,
                       count(*) AS n, max(e.timestamp) AS last_at
                FROM interactions_event e LEFT JOIN weights w ON w.event_type = e.event_type
                WHERE e.item_id IS NOT NULL AND e.timestamp > now() - make_interval(days => %s)
                GROUP BY e.item_id
            ), upserted AS (
                INSERT INTO recommendations_itempopularity
                    (item_id, score, interaction_count, last_interaction_at, created_at, updated_at)
                SELECT item_id, score, n, last_at, now(), now() FROM agg
                ON CONFLICT (item_id) DO UPDATE SET score = EXCLUDED.score,
                    interaction_count = EXCLUDED.interaction_count,
                    last_interaction_at = EXCLUDED.last_interaction_at, updated_at = now()
                RETURNING item_id
            )
            DELETE FROM recommendations_itempopularity p
            WHERE NOT EXISTS (SELECT 1 FROM upserted u WHERE u.item_id = p.item_id)
            """,
            [list(weights), list(weights.values()), POPULARITY_HALF_LIFE_DAYS, POPULARITY_WINDOW_DAYS],
        )
        cur.execute("SELECT count(*) FROM recommendations_itempopularity")
        return cur.fetchone()[0]


def audit_record(*, user: Any, action: str, obj: Any, changes: dict[str, list[Any]]) -> AuditEntry:
    """One audit row: who (`user`), what (`action` on `obj`, with {field: [before, after]}), when (now)."""
    return AuditEntry.objects.create(
        user=user if getattr(user, "pk", None) else None,
        username=getattr(user, "get_username", lambda: "")(),
        action=action,
        model=obj._meta.label,
        object_id=str(obj.pk),
        object_repr=str(obj)[:300],
        changes=changes,
    )

"""Writes of serving: the served-list log, item popularity, erasure of a user's lists, the admin audit."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone
from psycopg.types.json import Jsonb

from interactions.selectors import event_weights
from recommendations.models import AuditEntry, ServedList
from recommendations.served_log import served_log_flush_now, served_row_log

if TYPE_CHECKING:
    from recommendations.scenarios import Answer

# Popularity: events of the last POPULARITY_WINDOW_DAYS count, each halving in weight every
# POPULARITY_HALF_LIFE_DAYS, weighted by how much intent its type shows (`event_weight`, the one table).
POPULARITY_WINDOW_DAYS = 30
POPULARITY_HALF_LIFE_DAYS = 3.0
# One refresh at a time (two would do the same work twice); any constant unique to this job.
POPULARITY_LOCK_ID = 0x52454350  # "RECP"


def served_list_log(
    *,
    answer: Answer,
    user_id: str,
    session_id: str,
    surface: str,
    model_version: str,
    backend: str,
    **columns: Any,
) -> None:
    """The list exactly as served, under its recommendation_id: handed to the served-list log, which
    writes it off the request path (recommendations/served_log.py). `columns` are further columns of
    ServedList, by name (an experiment's variant, say), written as given."""
    now = timezone.now()
    row: dict[str, Any] = {
        "recommendation_id": answer.recommendation_id,
        "user_id": user_id or "",
        "session_id": session_id or "",
        "surface": surface,
        "scenario": answer.scenario,
        "profile_surface": answer.profile,
        "profile_version": answer.profile_version,
        "model_version": model_version,
        "backend": backend,
        "item_pks": [item["pk"] for item in answer.items],
        "item_ids": [item["id"] for item in answer.items],
        "scores": [item["score"] for item in answer.items],
        "reasons": Jsonb([item["reason"] for item in answer.items]),
        "seen_positions": [],
        "created_at": now,  # when it was served, not when the log caught up
        "updated_at": now,
        **columns,
    }
    served_row_log(row=row)


def served_lists_backdate(*, served_at: dict[uuid.UUID, datetime]) -> int:
    """Moves lists to the moment they were served in a replay (the demo's simulated shoppers serve past
    days through the live path, which logs each list at `now()`). One UPDATE; returns the lists moved."""
    if not served_at:
        return 0
    served_log_flush_now()  # the replay's lists may still be in this process's buffer
    ids = list(served_at)
    with connection.cursor() as cur:
        cur.execute(
            """
            UPDATE recommendations_servedlist s SET created_at = m.at, updated_at = m.at
            FROM unnest(%s::uuid[], %s::timestamptz[]) AS m(id, at)
            WHERE s.recommendation_id = m.id
            """,
            [ids, [served_at[i] for i in ids]],
        )
        return cur.rowcount


# Positions a client may report as seen: a list has at most 100 items (the API's `limit`).
MAX_POSITION = 100


def served_lists_seen_record(*, seen: dict[uuid.UUID, Collection[int]], user_id: str, session_id: str) -> int:
    """Impressions: adds the positions a visitor's client saw to each list's `seen_positions` (a set, in
    order; positions past the list's end are ignored), for lists served to this visitor only (their user
    id or their session; an empty id names nobody). One UPDATE; returns the lists updated."""
    if not seen or not (user_id or session_id):
        return 0
    # A list served by this process may still be buffered (lists served by another web process land
    # within RECSYS_SERVED_LOG_FLUSH_SECONDS; impressions reported before that miss it).
    served_log_flush_now()
    ids = list(seen)
    # one array per list, as text: unnest cannot take a ragged 2-D array
    positions = [
        "{" + ",".join(str(int(p)) for p in seen[i] if 1 <= int(p) <= MAX_POSITION) + "}" for i in ids
    ]
    with connection.cursor() as cur:
        cur.execute(
            """
            UPDATE recommendations_servedlist s
            SET seen_positions = ARRAY(
                SELECT DISTINCT p FROM unnest(s.seen_positions || m.positions::smallint[]) AS p
                WHERE p BETWEEN 1 AND cardinality(s.item_pks) ORDER BY p
            )
            FROM unnest(%s::uuid[], %s::text[]) AS m(id, positions)
            WHERE s.recommendation_id = m.id
              AND ((%s <> '' AND s.user_id = %s) OR (%s <> '' AND s.session_id = %s))
            """,
            [ids, positions, user_id, user_id, session_id, session_id],
        )
        return cur.rowcount


def served_lists_erase(*, user_id: str, session_ids: Collection[str] = ()) -> dict[str, int]:
    """Deletes the lists served to a user, and the anonymous lists of their sessions (part of erasing the
    user). Lists served to another user in the same session stay.

    This process's buffered lists are written first, so that they are erased too; lists still buffered in
    other serving processes land up to RECSYS_SERVED_LOG_FLUSH_SECONDS later (docs/serving-speed.md)."""
    served_log_flush_now()
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


# Serving's entry points for the apps above (the storefront, the demo's traffic): one list, served and
# logged as the API serves it. scenarios imports this module, hence the imports inside the functions.
def recommendations_serve(
    *,
    kind: str,
    limit: int,
    surface: str,
    user_id: str = "",
    session_id: str = "",
    item: tuple[int, str] | None = None,
    cart: dict[int, str] | None = None,
    exclude_pks: frozenset[int] = frozenset(),
    unlogged: bool = False,
) -> Answer:
    """Serve one list of `kind` ("user", "trending", "similar" and "bought_together" of `item` (pk, shop
    id), "cart" of `cart` (pk -> shop id)) to `user_id`/`session_id`. `unlogged`: the live list, served as
    a default preview, so nothing is logged."""
    from recommendations import scenarios

    params = scenarios.ListParams(limit=limit, surface=surface, exclude_pks=exclude_pks)
    preview = scenarios.PreviewOptions() if unlogged else None
    served_to: dict[str, Any] = {"preview": preview, "user_id": user_id, "session_id": session_id}
    if kind == "user":
        return scenarios.recommendations_for_user(params=params, **served_to)
    if kind == "trending":
        return scenarios.recommendations_trending(params=params, **served_to)
    if kind in ("similar", "bought_together"):
        if item is None:
            raise ValueError(f"{kind} needs an item")
        serve = (
            scenarios.recommendations_similar
            if kind == "similar"
            else scenarios.recommendations_bought_together
        )
        return serve(item_pk=item[0], external_id=item[1], params=params, **served_to)
    if kind == "cart":
        if not cart:
            raise ValueError("cart needs items")
        return scenarios.recommendations_for_cart(items=cart, params=params, **served_to)
    raise ValueError(f"unknown kind {kind!r}")


def search_serve(
    *, query: str, limit: int, surface: str, category: str = "", user_id: str = "", session_id: str = ""
) -> Answer:
    """The semantic search's answer to `query` (in this top-level category, if given), served and logged
    like any list."""
    from recommendations import scenarios

    params = scenarios.ListParams(limit=limit, surface=surface, category=(category,) if category else ())
    return scenarios.recommendations_search(
        query=query, params=params, user_id=user_id, session_id=session_id
    )

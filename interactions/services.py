"""Writes to the interaction stream: ingestion, late links of events to their items, and erasure. Input is
already validated."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, transaction
from django.dispatch import Signal

from core.payloads import EVENT_KEYS
from interactions.models import Event, EventType, UserProfile
from interactions.signals import events_stored
from interactions.tasks import user_vectors_enqueue

# Sent inside the erasure transaction with `user_id`, before anything is deleted; receivers return the
# session ids they saw the user use (e.g. a served list's), as a set.
user_sessions = Signal()
# Sent inside the erasure transaction with `user_id` and `session_ids` (every session the user used);
# receivers (served-list logs, the storefront's sessions, caches, ...) delete what they hold for that
# user and the anonymous traces of those sessions, and return {"what": count}. Apps that import
# interactions connect to both, so interactions needs to know nothing about them.
user_erasure = Signal()


@dataclass
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    # (user_id, event pk) of the newly stored events, for the user-vector update
    stored: list[tuple[str | None, int]] = field(default_factory=list)


# Where a batch comes from: arrays bound as parameters (API batches), or a session-local staging table
# filled by COPY (imports: ~2x faster per row at 5,000 rows, as psycopg dumps no arrays).
_UNNEST_SOURCE = """
    SELECT * FROM unnest(
        %s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::timestamptz[], %s::text[],
        %s::uuid[], %s::text[], %s::int[], %s::numeric[], %s::int[]
    ) AS b(event_id, user_id, session_id, item_external_id, event_type, ts, device_type,
           recommendation_id, surface, position, value, quantity)"""
_STAGING_COLUMNS = (
    "event_id, user_id, session_id, item_external_id, event_type, ts, device_type, recommendation_id, "
    "surface, position, value, quantity"
)
# ON COMMIT DELETE ROWS: rows never outlive the transaction; the table itself lives as long as the
# connection, so it is created once per connection, not per batch.
_STAGING_DDL = """
CREATE TEMP TABLE IF NOT EXISTS event_staging (
    event_id text, user_id text, session_id text, item_external_id text, event_type text, ts timestamptz,
    device_type text, recommendation_id uuid, surface text, position int, value numeric, quantity int
) ON COMMIT DELETE ROWS"""
_STAGING_SOURCE = "SELECT * FROM event_staging"

_INSERT_SQL = """
WITH batch AS ({source}
), inserted AS (
    INSERT INTO interactions_event (
        event_id, user_id, session_id, item_id, item_external_id, event_type, timestamp, received_at,
        updated_at, device_type, recommendation_id, surface, position, value, quantity
    )
    SELECT b.event_id, b.user_id, b.session_id, i.id, b.item_external_id, b.event_type, b.ts, now(), now(),
           b.device_type, b.recommendation_id, b.surface, b.position, b.value, b.quantity
    FROM batch b LEFT JOIN catalog_item i ON i.external_id = b.item_external_id
    ON CONFLICT (event_id) DO NOTHING
    RETURNING id, user_id, event_type, timestamp
), profiles AS (
    INSERT INTO interactions_userprofile (external_id, event_count, purchase_count, last_event_at,
                                          weight_sum, embedding_model, created_at, updated_at)
    SELECT user_id, count(*), count(*) FILTER (WHERE event_type = %s), max(timestamp), 0, '', now(), now()
    FROM inserted WHERE user_id IS NOT NULL GROUP BY user_id ORDER BY user_id
    ON CONFLICT (external_id) DO UPDATE SET
        event_count = interactions_userprofile.event_count + EXCLUDED.event_count,
        purchase_count = interactions_userprofile.purchase_count + EXCLUDED.purchase_count,
        last_event_at = GREATEST(interactions_userprofile.last_event_at, EXCLUDED.last_event_at),
        updated_at = now()
)
SELECT user_id, id FROM inserted
"""
_INSERT_FROM_ARRAYS = _INSERT_SQL.format(source=_UNNEST_SOURCE)
_INSERT_FROM_STAGING = _INSERT_SQL.format(source=_STAGING_SOURCE)


def events_ingest(*, events: Sequence[dict[str, Any]], bulk: bool = False) -> IngestResult:
    """Store validated events; idempotent on `event_id` (a replay is counted as a duplicate, never stored
    twice, also within one batch). One transaction, so the batch is durable as a whole when this returns:
    events, their item links and the users' counters commit together. `bulk` (imports, thousands of
    events) loads the batch with COPY instead of binding arrays; the result is the same."""
    result = IngestResult()
    seen: set[str] = set()
    unique: list[dict[str, Any]] = []
    for event in events:
        if event["event_id"] in seen:
            result.duplicates += 1
            continue
        seen.add(event["event_id"])
        unique.append(event)
    if not unique:
        return result
    with transaction.atomic(), connection.cursor() as cur:
        # Profiles are upserted in user_id order, so concurrent batches sharing users cannot deadlock.
        if bulk:
            cur.execute(_STAGING_DDL)
            with cur.cursor.copy(f"COPY event_staging ({_STAGING_COLUMNS}) FROM STDIN") as copy:
                for event in unique:
                    copy.write_row([event[key] for key in EVENT_KEYS])
            cur.execute(_INSERT_FROM_STAGING, [EventType.PURCHASE])
        else:
            columns = [[event[key] for event in unique] for key in EVENT_KEYS]
            cur.execute(_INSERT_FROM_ARRAYS, [*columns, EventType.PURCHASE])
        result.stored = [(row[0], row[1]) for row in cur.fetchall()]
        # After commit: fold the events of known users into their vectors.
        user_vectors_enqueue(event_pks=[pk for user_id, pk in result.stored if user_id is not None])
        if result.stored:
            events_stored.send(sender=Event, event_pks=[pk for _user_id, pk in result.stored])
    result.accepted = len(result.stored)
    result.duplicates += len(unique) - result.accepted
    return result


# Events linked per transaction by the re-link sweep, and at most this many batches per run (the beat runs
# it every 10 minutes). With 200,000 events whose item never came and 50,000 items: a batch of 1,000 took
# ~0.2 s (0.5 s at most), a run with nothing to link 0.13 s (the partial index is walked to its end).
RELINK_BATCH_SIZE = 1000
RELINK_MAX_BATCHES = 20

# Unlinked events (the partial index event_unlinked_item) whose item exists by now. SKIP LOCKED: a row
# that another transaction holds (item_upsert linking it, an erasure) is left to it or to the next run;
# a row linked meanwhile is re-checked after the lock (READ COMMITTED) and drops out.
_RELINK_SQL = """
WITH found AS (
    SELECT e.id, i.id AS item_id
    FROM interactions_event e JOIN catalog_item i ON i.external_id = e.item_external_id
    WHERE e.item_id IS NULL
    LIMIT %(limit)s
    FOR UPDATE OF e SKIP LOCKED
)
UPDATE interactions_event e SET item_id = found.item_id, updated_at = now()
FROM found WHERE e.id = found.id
RETURNING e.id, e.user_id
"""


def events_link_to_items(*, external_ids: Sequence[str]) -> int:
    """Link the events that arrived before their item (held by its raw id) to the item, now that it exists:
    catalog's `items_created`, inside the item upsert's transaction. Returns how many were linked."""
    if not external_ids:
        return 0
    with connection.cursor() as cur:
        cur.execute(
            """
            UPDATE interactions_event e SET item_id = i.id
            FROM catalog_item i
            WHERE e.item_id IS NULL AND e.item_external_id = i.external_id AND i.external_id = ANY(%s)
            """,
            [list(external_ids)],
        )
        return cur.rowcount


def on_items_created(sender, *, external_ids: Sequence[str], **kwargs) -> int:
    return events_link_to_items(external_ids=external_ids)


def events_relink(*, batch_size: int = RELINK_BATCH_SIZE, max_batches: int = RELINK_MAX_BATCHES) -> int:
    """Link events stored before their item existed to the item that exists now, and queue the ones of
    known users for their vectors, as ingestion does for an event whose item it knew. item_upsert links the
    events it can see; an event committed while the item's transaction was open is seen by neither, and
    waits for this sweep. One transaction per batch; returns how many events were linked."""
    total = 0
    for _batch in range(max_batches):
        with transaction.atomic(), connection.cursor() as cur:
            cur.execute(_RELINK_SQL, {"limit": batch_size})
            linked = cur.fetchall()
            user_vectors_enqueue(event_pks=[pk for pk, user_id in linked if user_id is not None])
            if linked:
                events_stored.send(sender=Event, event_pks=[pk for pk, _user_id in linked])
        total += len(linked)
        if len(linked) < batch_size:
            break
    return total


def events_delete(*, pks: list[int]) -> int:
    """Delete these events (analytics' retention, which deletes their attributions first, in the same
    transaction); returns how many."""
    return Event.objects.filter(pk__in=pks).delete()[1].get(Event._meta.label, 0)


@transaction.atomic
def user_erase(*, user_id: str) -> dict[str, int]:
    """Erase a user (docs/security.md, "Privacy"): their events, profile and vector; every session they used (the
    session ids of their events, and those other apps report through `user_sessions`) with the anonymous
    events of those sessions; and whatever other apps hold for the user or the sessions (through
    `user_erasure`). One transaction. Another user's events in a shared session id stay theirs."""
    session_ids = set(
        Event.objects.filter(user_id=user_id).exclude(session_id="").values_list("session_id", flat=True)
    )
    for _receiver, found in user_sessions.send(sender=UserProfile, user_id=user_id):
        session_ids |= set(found or ()) - {""}
    deleted = {
        "events": Event.objects.filter(user_id=user_id).delete()[0],
        "anonymous_events": Event.objects.filter(user_id__isnull=True, session_id__in=session_ids).delete()[
            0
        ],
        "profiles": UserProfile.objects.filter(external_id=user_id).delete()[0],
    }
    for _receiver, response in user_erasure.send(
        sender=UserProfile, user_id=user_id, session_ids=frozenset(session_ids)
    ):
        # each receiver answers {kind: rows deleted} (django-stubs types a response as a string)
        counts: dict[str, int] = response if isinstance(response, dict) else {}
        for key, count in counts.items():
            deleted[key] = deleted.get(key, 0) + count
    return deleted

"""User vectors: the weighted, recency-decayed mean of the vectors of the items a user interacted with.

    user = normalise( sum_e  weight(type_e) * 2^(-(ref - t_e) / half_life) * item_vector_e )

Kept as running sums on the profile (`vector_sum`, `weight_sum`, scaled to `decay_ref_at`, the newest
applied event), so a new event costs O(1): when it is newer than `decay_ref_at`, the sums are scaled down
once to the new reference, then the event is added. No event history is re-read. `user_vectors_rebuild`
computes the same sums from scratch; both paths agree within float tolerance (tests/interactions).

Exactly-once: an event is applied in the same transaction that marks it `vector_applied`. Events whose item
has no vector yet stay pending and are applied when the item is embedded (the item_vectors_changed
receiver in interactions.tasks) or by the sweep.

Locking: both paths lock the users' profiles (SELECT ... FOR UPDATE, in external_id order, so batches
cannot deadlock) before they touch those users' events, so a rebuild and an incremental update of the
same user serialise instead of one overwriting the other's sums.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from catalog.embedding import current_model_name
from interactions.abuse import RANK_IN_MINUTE_SQL, event_rate_factor
from interactions.models import UserProfile
from interactions.selectors import event_weight

# Events per apply round. 1,000 events of ~50 users: ~40 ms in SQL + numpy on the 2-core box.
APPLY_BATCH_SIZE = 1000
# Users per rebuild transaction (their whole histories are read at once; Online Retail averages ~90
# events per customer, so ~20k events, ~30 MB of vectors as text at most).
REBUILD_USERS_PER_BATCH = 200

SECONDS_PER_DAY = 86400.0


def half_life_seconds() -> float:
    return settings.RECSYS_USER_HALF_LIFE_DAYS * SECONDS_PER_DAY


def decay(*, age_seconds: float) -> float:
    """The weight left after `age_seconds`: 1 now, 1/2 after one half-life."""
    return math.pow(2.0, -max(age_seconds, 0.0) / half_life_seconds())


def parse_vector(text: str) -> np.ndarray:
    return np.array(text[1:-1].split(","), dtype=np.float64)


def vector_to_text(vector: np.ndarray) -> str:
    return "[" + ",".join(repr(float(x)) for x in vector) + "]"


@dataclass
class UserSums:
    """A user's decayed sums, in float64 while we compute; stored as float32 (pgvector)."""

    vector_sum: np.ndarray | None
    weight_sum: float
    ref: datetime | None

    def add(self, events: list[tuple[str, datetime, np.ndarray, float]]) -> None:
        """Fold (event_type, timestamp, item vector, rate factor) in. Order does not matter. The rate
        factor (interactions/abuse.py) down-weights a user's events past a human rate."""
        if not events:
            return
        newest = max(event[1] for event in events)
        if self.ref is None or self.vector_sum is None:
            self.vector_sum = np.zeros(len(events[0][2]), dtype=np.float64)
            self.weight_sum = 0.0
            self.ref = newest
        elif newest > self.ref:
            factor = decay(age_seconds=(newest - self.ref).total_seconds())
            self.vector_sum *= factor
            self.weight_sum *= factor
            self.ref = newest
        for event_type, ts, vector, factor in events:
            weight = factor * event_weight(event_type) * decay(age_seconds=(self.ref - ts).total_seconds())
            self.vector_sum += weight * vector
            self.weight_sum += weight

    def embedding(self) -> np.ndarray | None:
        if self.vector_sum is None or self.weight_sum <= 0:
            return None
        norm = float(np.linalg.norm(self.vector_sum))
        if norm == 0.0 or not math.isfinite(norm):
            return None
        return (self.vector_sum / norm).astype(np.float32)


def _profiles_lock(user_ids: Iterable[str]) -> tuple[dict[str, UserProfile], set[str]]:
    """Create missing profiles (events from imports may come without one), then lock them in order.
    Returns the locked profiles and the ids created here (see _profiles_drop_empty)."""
    ids = sorted(set(user_ids))
    with connection.cursor() as cur:
        cur.execute(
            """
            INSERT INTO interactions_userprofile (external_id, weight_sum, embedding_model, event_count,
                                                  purchase_count, created_at, updated_at)
            SELECT u, 0, '', 0, 0, now(), now() FROM unnest(%s::text[]) AS u
            ON CONFLICT (external_id) DO NOTHING
            RETURNING external_id
            """,
            [ids],
        )
        created = {row[0] for row in cur.fetchall()}
    profiles = {
        p.external_id: p
        for p in UserProfile.objects.select_for_update().filter(external_id__in=ids).order_by("external_id")
    }
    return profiles, created


def _profiles_drop_empty(created: set[str], with_events: Iterable[str]) -> None:
    """Delete the profiles created by this transaction that got no event after all: the user was erased
    between our read of the pending events and our claim, and must not come back as an empty profile."""
    empty = created - set(with_events)
    if empty:
        UserProfile.objects.filter(external_id__in=empty).delete()


def _profiles_write(profiles: list[UserProfile], sums: dict[str, UserSums], model_name: str) -> None:
    now = timezone.now()  # bulk_update does not apply auto_now
    for profile in profiles:
        profile.updated_at = now
        s = sums[profile.external_id]
        profile.vector_sum = s.vector_sum.astype(np.float32) if s.vector_sum is not None else None
        profile.weight_sum = s.weight_sum
        profile.decay_ref_at = s.ref
        profile.embedding = s.embedding()
        profile.embedding_model = model_name if s.vector_sum is not None else ""
    UserProfile.objects.bulk_update(
        profiles,
        ["vector_sum", "weight_sum", "decay_ref_at", "embedding", "embedding_model", "updated_at"],
        batch_size=500,
    )


def _sums_of(profile: UserProfile) -> UserSums:
    vector_sum = np.asarray(profile.vector_sum, dtype=np.float64) if profile.vector_sum is not None else None
    return UserSums(vector_sum=vector_sum, weight_sum=profile.weight_sum, ref=profile.decay_ref_at)


_PENDING_SQL = """
SELECT e.id, e.user_id FROM interactions_event e JOIN catalog_item i ON i.id = e.item_id
WHERE NOT e.vector_applied AND e.user_id IS NOT NULL
  AND i.embedding IS NOT NULL AND i.embedding_model = %(model)s
  {where}
ORDER BY e.id
LIMIT %(limit)s
"""

# Re-checks `NOT vector_applied` on the latest row version (READ COMMITTED), after the profiles are
# locked: an event another transaction applied meanwhile is not applied twice.
_CLAIM_SQL = f"""
UPDATE interactions_event e SET vector_applied = true
FROM catalog_item i
WHERE e.id = ANY(%(ids)s) AND NOT e.vector_applied AND e.user_id = ANY(%(users)s)
  AND i.id = e.item_id AND i.embedding IS NOT NULL AND i.embedding_model = %(model)s
RETURNING e.user_id, e.event_type, e.timestamp, i.embedding::text, {RANK_IN_MINUTE_SQL}
"""


@dataclass
class ApplyResult:
    events: int = 0
    users: int = 0
    # whose vectors changed (recommendations recomputes their candidate lists)
    user_ids: set[str] = field(default_factory=set)


def user_vectors_apply(
    *, event_pks: list[int] | None = None, item_pks: list[int] | None = None, limit: int = APPLY_BATCH_SIZE
) -> ApplyResult:
    """Apply one round of up to `limit` pending events (among `event_pks`, or the events of `item_pks`,
    or any) to their users' sums. Runs in one transaction: the events are marked applied together with
    the new sums, so a worker killed in the middle leaves both as they were."""
    model_name = current_model_name()
    where = ""
    params: dict[str, Any] = {"model": model_name, "limit": limit}
    if event_pks is not None:
        where, params["ids"] = "AND e.id = ANY(%(ids)s)", list(event_pks)
    elif item_pks is not None:
        where, params["items"] = "AND e.item_id = ANY(%(items)s)", list(item_pks)
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(_PENDING_SQL.format(where=where), params)
        pending = cur.fetchall()
        if not pending:
            return ApplyResult()
        profiles, created = _profiles_lock(uid for _id, uid in pending)
        cur.execute(
            _CLAIM_SQL, {"ids": [pk for pk, _u in pending], "users": list(profiles), "model": model_name}
        )
        by_user: dict[str, list[tuple[str, datetime, np.ndarray, float]]] = defaultdict(list)
        for user_id, event_type, ts, vector, rank in cur.fetchall():
            factor = event_rate_factor(rank_in_minute=rank, event_type=event_type)
            by_user[user_id].append((event_type, ts, parse_vector(vector), factor))
        sums = {}
        for user_id, events in by_user.items():
            s = _sums_of(profiles[user_id])
            s.add(events)
            sums[user_id] = s
        _profiles_write([profiles[u] for u in sorted(by_user)], sums, model_name)
        _profiles_drop_empty(created, by_user)
    return ApplyResult(
        events=sum(len(v) for v in by_user.values()), users=len(by_user), user_ids=set(by_user)
    )


def user_vectors_apply_all(
    *, event_pks: list[int] | None = None, item_pks: list[int] | None = None, max_rounds: int = 1000
) -> ApplyResult:
    """Apply rounds until nothing is pending (of these events / items, or at all)."""
    total = ApplyResult()
    for _round in range(max_rounds):
        result = user_vectors_apply(event_pks=event_pks, item_pks=item_pks)
        total.events += result.events
        total.users += result.users
        total.user_ids |= result.user_ids
        if result.events == 0:
            break
    return total


_REBUILD_SQL = f"""
UPDATE interactions_event e SET vector_applied = true
FROM catalog_item i
WHERE e.user_id = ANY(%(users)s) AND i.id = e.item_id
  AND i.embedding IS NOT NULL AND i.embedding_model = %(model)s
RETURNING e.user_id, e.event_type, e.timestamp, i.embedding::text, {RANK_IN_MINUTE_SQL}
"""


def user_vectors_rebuild(*, user_ids: list[str]) -> ApplyResult:
    """Recompute these users' sums from all their events, from scratch. One transaction; locks their
    profiles first (see the module docstring). Events whose item has no vector stay pending."""
    model_name = current_model_name()
    with transaction.atomic(), connection.cursor() as cur:
        profiles, created = _profiles_lock(user_ids)
        cur.execute(_REBUILD_SQL, {"users": list(profiles), "model": model_name})
        by_user: dict[str, list[tuple[str, datetime, np.ndarray, float]]] = defaultdict(list)
        for user_id, event_type, ts, vector, rank in cur.fetchall():
            factor = event_rate_factor(rank_in_minute=rank, event_type=event_type)
            by_user[user_id].append((event_type, ts, parse_vector(vector), factor))
        sums = {}
        for user_id in profiles:
            s = UserSums(vector_sum=None, weight_sum=0.0, ref=None)
            s.add(by_user.get(user_id, []))
            sums[user_id] = s
        _profiles_write(
            [p for u, p in profiles.items() if u not in created or u in by_user], sums, model_name
        )
        _profiles_drop_empty(created, by_user)
    return ApplyResult(events=sum(len(v) for v in by_user.values()), users=len(profiles))


def user_ids_with_events() -> Iterable[str]:
    """Every user id that has events, in order."""
    with connection.cursor() as cur:
        cur.execute(
            "SELECT DISTINCT user_id FROM interactions_event WHERE user_id IS NOT NULL ORDER BY user_id"
        )
        while rows := cur.fetchmany(5000):
            yield from (row[0] for row in rows)

"""Dead letters: a row a sweep cannot process is recorded (`DeadLetter`, in admin with its error) and
skipped, so the sweep moves on and one bad row never stops attribution or the rollups for everybody.

A sweep works in batches; when a batch fails it redoes that batch row by row, each row in its own savepoint
(`rows_each`), and records the rows that still fail. The sweeps try a dead-lettered row again when they meet
it (the rollup re-reads its day, the attribution sweep its overlap margin), up to DEAD_LETTER_MAX_ATTEMPTS
times in all; then they skip it until someone retries it (admin action, `dead_letter_retry`). A row that
goes through on a later attempt has its dead letter marked resolved.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import date
from typing import TypeVar

from django.db import connection, transaction

from analytics.models import DeadLetter, DeadLetterSweep

logger = logging.getLogger(__name__)

# A row that failed this many times is no longer tried by the sweeps on their own: a deterministic failure
# (bad data) would otherwise cost a failed batch and a row-by-row redo on every run, forever.
DEAD_LETTER_MAX_ATTEMPTS = 3
# The error text kept: enough for the database's message and its detail line.
ERROR_MAX_CHARS = 2000

K = TypeVar("K")


def dead_letter_keys_skipped(*, sweep: str) -> set[str]:
    """Keys the sweep no longer tries on its own: unresolved, and failed DEAD_LETTER_MAX_ATTEMPTS times."""
    return set(
        DeadLetter.objects.filter(
            sweep=sweep, resolved=False, attempts__gte=DEAD_LETTER_MAX_ATTEMPTS
        ).values_list("key", flat=True)
    )


def dead_letter_keys_pending(*, sweep: str) -> set[str]:
    """Keys with an unresolved dead letter that the sweep still tries."""
    return set(
        DeadLetter.objects.filter(
            sweep=sweep, resolved=False, attempts__lt=DEAD_LETTER_MAX_ATTEMPTS
        ).values_list("key", flat=True)
    )


def dead_letter_record(*, sweep: str, key: str, error: BaseException) -> None:
    """Record (or count one more attempt of) a row that failed. Runs in the caller's transaction: the
    sweep's cursor and its dead letters commit together."""
    text = f"{type(error).__name__}: {error}"[:ERROR_MAX_CHARS]
    logger.warning("%s sweep: %s %s failed and is dead-lettered: %s", sweep, sweep, key, text)
    letter, created = DeadLetter.objects.select_for_update().get_or_create(
        sweep=sweep, key=key, defaults={"error": text}
    )
    if not created:
        letter.attempts += 1
        letter.error = text
        letter.resolved = False
        letter.save(update_fields=["attempts", "error", "resolved", "updated_at"])


def dead_letters_resolve(*, sweep: str, keys: Iterable[str]) -> int:
    """Mark these rows' dead letters resolved (a later attempt went through)."""
    keys = list(keys)
    if not keys:
        return 0
    return DeadLetter.objects.filter(sweep=sweep, key__in=keys, resolved=False).update(resolved=True)


def deferred_constraints_check() -> None:
    """Check the deferred foreign keys now. They are checked at commit otherwise: a row pointing at an
    event deleted meanwhile (user erasure, retention) would fail the sweep's whole transaction, not its own
    savepoint."""
    with connection.cursor() as cur:
        cur.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cur.execute("SET CONSTRAINTS ALL DEFERRED")


def rows_each(
    *, sweep: str, rows: Iterable[K], key: Callable[[K], str], process: Callable[[K], object]
) -> int:
    """Process rows one by one, each in a savepoint; dead-letter the ones that raise, resolve the dead
    letters of the ones that go through. Returns how many failed."""
    failed, done = 0, []
    for row in rows:
        try:
            with transaction.atomic():
                process(row)
                deferred_constraints_check()
        except Exception as exc:  # noqa: BLE001 - any error of one row: record it and move on
            dead_letter_record(sweep=sweep, key=key(row), error=exc)
            failed += 1
        else:
            done.append(key(row))
    dead_letters_resolve(sweep=sweep, keys=done)
    return failed


def dead_letter_retry(*, dead_letter: DeadLetter) -> bool:
    """Process a dead-lettered row again now (whatever its attempts). True and resolved when it goes
    through; otherwise one more attempt is counted with the new error."""
    # imported here: both sweeps import this module to record their failures
    from analytics.attribution import event_attribute
    from analytics.rollups import daily_metrics_rollup

    if dead_letter.sweep == DeadLetterSweep.ATTRIBUTION:

        def process() -> object:
            return event_attribute(pk=int(dead_letter.key))
    else:

        def process() -> object:
            return daily_metrics_rollup(day=date.fromisoformat(dead_letter.key))

    with transaction.atomic():
        failed = rows_each(
            sweep=dead_letter.sweep, rows=[dead_letter.key], key=str, process=lambda _: process()
        )
    dead_letter.refresh_from_db()
    return not failed

"""Beat runs once (docs/deploy.md "Workers on other hosts").

Every beat takes a PostgreSQL advisory lock (session level, on a connection of its own) before it schedules
anything: recsys_project/celery.py connects `beat_lock_wait` to Celery's `beat_init`. A second beat, on this
machine or another, waits for the lock and schedules nothing until the first one's session ends (it stopped,
died, or lost its database connection: the lock goes with the session); then it takes over. A beat that
loses its lock connection exits, so that two never schedule at once (its supervisor starts it again, and it
waits as the standby).

No Django import at module level: harnesses outside Django (tests/cluster/cluster.py) read BEAT_LOCK_KEY.
"""

from __future__ import annotations

import logging
import os
import threading
import time

logger = logging.getLogger(__name__)

# Advisory locks are per database, so this is one lock per instance. pg_locks shows it as classid = the
# high 32 bits, objid = the low 32 bits.
BEAT_LOCK_KEY = 0x7265_6373_7973_6231  # "recsysb1"
BEAT_LOCK_POLL_SECONDS = 5.0
_holder = None  # the connection holding the lock, kept for the life of the process


def beat_lock_try():
    """A new database connection (a Django DatabaseWrapper of `default`) that holds the beat lock, or None
    when another session holds it. Closing the connection releases the lock."""
    from django.db import connections

    holder = connections.create_connection("default")
    holder.connect()
    if holder.connection.execute("SELECT pg_try_advisory_lock(%s)", (BEAT_LOCK_KEY,)).fetchone()[0]:
        return holder
    holder.close()
    return None


def _watch(holder) -> None:
    while True:
        time.sleep(BEAT_LOCK_POLL_SECONDS)
        try:
            holder.connection.execute("SELECT 1")
        except Exception as exc:  # noqa: BLE001 - any failure: the lock may be gone with the session
            logger.error("beat: lost the connection that holds the beat lock (%s); exiting", exc)
            os._exit(1)


def beat_lock_wait(sender=None, **kwargs) -> None:
    """Blocks this beat until it holds the beat lock (a standby beat waits here)."""
    global _holder
    said = False
    while _holder is None:
        try:
            _holder = beat_lock_try()
        except Exception as exc:  # noqa: BLE001 - database down: wait for it as for the lock
            logger.warning("beat: cannot reach the database for the beat lock (%s); retrying", exc)
        if _holder is None:
            if not said:
                logger.warning("beat: another beat holds the beat lock; standing by until it stops")
                said = True
            time.sleep(BEAT_LOCK_POLL_SECONDS)
    logger.warning("beat: holding the beat lock; scheduling")
    threading.Thread(target=_watch, args=(_holder,), name="recsys-beat-lock", daemon=True).start()

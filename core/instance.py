"""Which copy of recsys this process belongs to, so that copies sharing one Redis never share its keys.

Every Redis key the project writes (Celery's queues, bindings, unacked messages and broadcast channels, the
cache and the throttle counters in it, the worker heartbeats) starts with `recsys:<instance>:`. Processes
that serve the same database share an instance; different databases never do, so two copies of the project
on one machine (or one Redis) cannot consume each other's tasks or read each other's cache.

The instance is `RECSYS_INSTANCE` when set. Otherwise it is derived from the database the process serves,
its host, port and name: without `DATABASE_URL` that is the embedded server under `RECSYS_DATA_DIR`, so each
data dir is an instance; with it, web and workers on different machines that share a database share their
queues, whatever their data dirs.
"""

from __future__ import annotations

import hashlib
import os
import re

from django.core.exceptions import ImproperlyConfigured

_VALID = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def instance_id(*, database: dict) -> str:
    """RECSYS_INSTANCE, else a 10-hex-digit hash of the database this process serves (`database` is the
    DATABASES["default"] entry)."""
    explicit = os.environ.get("RECSYS_INSTANCE", "").strip()
    if explicit:
        if not _VALID.fullmatch(explicit):
            raise ImproperlyConfigured(
                f"RECSYS_INSTANCE={explicit!r}: use 1-64 letters, digits, '_', '.' or '-' (it names Redis keys)."
            )
        return explicit
    # No user or password: the same database reached with other credentials is the same instance. The
    # embedded server's HOST is its data dir, so each data dir is an instance of its own.
    identity = f"{database.get('HOST') or ''}:{database.get('PORT') or ''}/{database.get('NAME') or ''}"
    return hashlib.sha256(identity.encode()).hexdigest()[:10]


def redis_key_prefix(instance: str) -> str:
    """The prefix of every Redis key this instance writes."""
    return f"recsys:{instance}:"

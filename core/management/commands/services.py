"""`python manage.py services start|stop|status`: the embedded PostgreSQL (and the embedded Redis, when one
was needed) under $RECSYS_DATA_DIR. With DATABASE_URL / REDIS_URL set there is nothing embedded to manage.

`manage.py` starts the embedded servers before any command (core/embedded.py `ensure_started`), except
`services stop` and `services status`, which are about those servers and must not start them: `start` has
nothing left to do but say what runs."""

from __future__ import annotations

import os

import redis
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from core import embedded


class Command(BaseCommand):
    help = "Start, stop or show the embedded PostgreSQL and Redis servers under RECSYS_DATA_DIR."
    requires_system_checks: list[str] = []

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["start", "stop", "status"])

    def handle(self, *args, action: str, **options):
        if action == "stop":
            self.stop()
        elif action == "start":
            # manage.py has started whatever was needed; say what runs now.
            self.status()
        else:
            self.status()

    def stop(self) -> None:
        if os.environ.get("DATABASE_URL"):
            self.stdout.write("DATABASE_URL is set: no embedded PostgreSQL to stop.")
        else:
            pid = embedded.embedded_postgres_pid()
            if pid is None:
                self.stdout.write(f"Embedded PostgreSQL ({embedded.pgdata_dir()}) is not running.")
            elif embedded.embedded_postgres_stop() and embedded.embedded_postgres_pid() is None:
                self.stdout.write(f"Stopped the embedded PostgreSQL (pid {pid}).")
            else:
                raise CommandError(
                    f"The embedded PostgreSQL (pid {pid}) did not stop within {embedded.STOP_WAIT_SECONDS} s."
                )
        if not os.environ.get("REDIS_URL") and embedded.embedded_redis_stop():
            self.stdout.write("Stopped the embedded Redis.")

    def status(self) -> None:
        if os.environ.get("DATABASE_URL"):
            self.stdout.write("PostgreSQL: external (DATABASE_URL)")
        else:
            pid = embedded.embedded_postgres_pid()
            state = f"running (pid {pid})" if pid else "stopped"
            self.stdout.write(f"PostgreSQL: embedded, {state}, data in {embedded.pgdata_dir()}")
        url = settings.REDIS_URL
        try:
            reachable = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5).ping()
        except redis.RedisError:
            reachable = False
        kind = "REDIS_URL" if os.environ.get("REDIS_URL") else "embedded"
        self.stdout.write(f"Redis: {url} ({kind}), {'answering' if reachable else 'not answering'}")

"""Recompute every user's vector from scratch from their events (after a model change, after changing the
event weights or the half-life, or to check the incremental path). Safe while workers run: each batch of
users is locked while it is rebuilt."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from interactions.models import Event, UserProfile
from interactions.user_vectors import REBUILD_USERS_PER_BATCH, user_ids_with_events, user_vectors_rebuild


class Command(BaseCommand):
    help = "Recompute every user's vector from all their events."

    def add_arguments(self, parser):
        parser.add_argument("--user", action="append", default=[], help="Only this user id (repeatable).")
        parser.add_argument(
            "--batch-size", type=int, default=REBUILD_USERS_PER_BATCH, help="Users per batch."
        )

    def handle(self, *args, **options):
        batch_size = options["batch_size"]
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        if options["user"]:
            wanted = set(options["user"])
            known: set[str | None] = set(
                UserProfile.objects.filter(external_id__in=wanted).values_list("external_id", flat=True)
            )
            known |= set(
                Event.objects.filter(user_id__in=wanted).values_list("user_id", flat=True).distinct()
            )
            if wanted - known:
                raise CommandError(f"unknown user ids: {', '.join(sorted(wanted - known))}")
            user_ids = sorted(wanted)
        else:
            # Users with events, and profiles without any left (their vector must become NULL).
            user_ids = sorted(
                set(user_ids_with_events()) | set(UserProfile.objects.values_list("external_id", flat=True))
            )
        started = time.monotonic()
        events = 0
        with tqdm(total=len(user_ids), unit="user", disable=None) as bar:
            for start in range(0, len(user_ids), batch_size):
                batch = user_ids[start : start + batch_size]
                events += user_vectors_rebuild(user_ids=batch).events
                bar.update(len(batch))
        elapsed = time.monotonic() - started
        self.stdout.write(f"rebuilt {len(user_ids)} users from {events} events in {elapsed:.1f} s")

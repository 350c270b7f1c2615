"""`python manage.py prune_events [--days N] [--dry-run]`: delete raw events older than N days (default:
RECSYS_EVENT_RETENTION_DAYS) once they are attributed and folded into user vectors, then the served lists
no remaining event refers to (analytics/retention.py). The beat runs the same thing daily when the setting
is above 0."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from analytics.retention import MIN_RETENTION_DAYS, events_prunable, retention_prune, served_lists_prunable


class Command(BaseCommand):
    help = (
        "Delete raw events older than N days that are already in the rollups and the user vectors, and the "
        "served lists no remaining event refers to."
    )

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=None, help="default: RECSYS_EVENT_RETENTION_DAYS")
        parser.add_argument("--dry-run", action="store_true", help="count, delete nothing")

    def handle(self, *args, days: int | None, dry_run: bool, **options):
        days = settings.RECSYS_EVENT_RETENTION_DAYS if days is None else days
        if not days:
            raise CommandError("no retention set: pass --days N or set RECSYS_EVENT_RETENTION_DAYS")
        if days < MIN_RETENTION_DAYS:
            raise CommandError(
                f"--days must be at least {MIN_RETENTION_DAYS} (rollups are final after 2 days)"
            )
        if dry_run:
            served = served_lists_prunable(days=days)
            self.stdout.write(
                f"{events_prunable(days=days).count()} events and "
                f"{served.count() if served is not None else 0} served lists would be pruned "
                f"(older than {days} days)"
            )
            return
        result = retention_prune(days=days)
        self.stdout.write(
            f"pruned {result.events} events and {result.served_lists} served lists older than {days} days"
        )

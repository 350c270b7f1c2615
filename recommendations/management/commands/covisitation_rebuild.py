"""`python manage.py covisitation_rebuild`: recompute co-visitation from every stored event and mark them
folded (recommendations/covisitation.py). For a shop upgraded with history, or after changing the
formula's constants; the fold keeps it up to date afterwards."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand

from recommendations.covisitation import covisitation_rebuild


class Command(BaseCommand):
    help = "Recompute item co-visitation (bought/viewed together) from all events."

    def handle(self, *args, **options):
        started = time.monotonic()
        rows = covisitation_rebuild()
        self.stdout.write(
            f"co-visitation rebuilt: {rows:,} rows (directed pairs and item popularity, every kind) in {time.monotonic() - started:.1f} s"
        )

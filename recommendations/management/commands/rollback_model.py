"""`python manage.py rollback_model [--to ID]`: deactivate the active two-tower version and re-activate the
previous one (or the given one); with none left, serving falls back to content vectors."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from recommendations.models import ModelVersion
from recommendations.two_tower import registry


class Command(BaseCommand):
    help = "Roll the two-tower model back to the previous version (or --to ID)."

    def add_arguments(self, parser):
        parser.add_argument("--to", type=int, dest="to", metavar="ID", help="Version to activate.")

    def handle(self, *args, **options):
        before = ModelVersion.objects.filter(kind=ModelVersion.Kind.TWO_TOWER, is_active=True).first()
        if before is None and options["to"] is None:
            raise CommandError("No two-tower version is active: nothing to roll back.")
        try:
            now = registry.model_rollback(to_version_id=options["to"])
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        was = f"v{before.pk}" if before else "none"
        self.stdout.write(
            f"active two-tower version: {was} -> {f'v{now.pk}' if now else 'none (content vectors)'}"
        )

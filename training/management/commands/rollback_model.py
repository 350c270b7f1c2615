"""`python manage.py rollback_model [--kind ranker] [--to ID]`: deactivate the active version of a model
(the two-tower by default, or the ranker) and re-activate the previous one (or the given one); with none
left, serving falls back to content vectors (two-tower) or single retrieval (ranker)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from recommendations.models import ModelVersion
from training.ranker import registry as ranker_registry
from training.two_tower import registry

FALLBACK = {"two_tower": "content vectors", "ranker": "single retrieval"}


class Command(BaseCommand):
    help = "Roll a model back to its previous version (or --to ID): the two-tower model, or --kind ranker."

    def add_arguments(self, parser):
        parser.add_argument("--to", type=int, dest="to", metavar="ID", help="Version to activate.")
        parser.add_argument("--kind", choices=list(FALLBACK), default="two_tower")

    def handle(self, *args, **options):
        kind = options["kind"]
        label = "two-tower" if kind == "two_tower" else kind
        before = ModelVersion.objects.filter(kind=kind, is_active=True).first()
        if before is None and options["to"] is None:
            raise CommandError(f"No {label} version is active: nothing to roll back.")
        rollback = registry.model_rollback if kind == "two_tower" else ranker_registry.ranker_rollback
        try:
            now = rollback(to_version_id=options["to"])
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        was = f"v{before.pk}" if before else "none"
        self.stdout.write(
            f"active {label} version: {was} -> {f'v{now.pk}' if now else f'none ({FALLBACK[kind]})'}"
        )

"""`python manage.py train_model`: the one refresh after a bulk import. In order: train a two-tower version
on a window of recent events, gate it on the held-out evaluation and promote it only if it wins
(training/two_tower/registry.py); bring co-visitation up to date from the events; then train and
gate the ranker the same way (training/ranker/registry.py)."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError

from training.ranker import registry as ranker_registry
from training.two_tower import registry


class Command(BaseCommand):
    help = "Train the two-tower model, evaluate it against the active version (or content-only), promote if better."

    def add_arguments(self, parser):
        parser.add_argument(
            "--window-days", type=float, help="Train on the last N days of events (default: setting)."
        )
        parser.add_argument("--seed", type=int, help="Random seed (default: RECSYS_TWO_TOWER_SEED).")
        parser.add_argument("--max-epochs", type=int, help="Upper bound on epochs (early stopping decides).")
        parser.add_argument("--no-progress", action="store_true")
        parser.add_argument(
            "--only", choices=["two_tower", "covisitation", "ranker"], help="Run one step only."
        )

    def handle(self, *args, **options):
        if options["window_days"] is not None and options["window_days"] <= 0:
            raise CommandError("--window-days must be positive.")
        if options["max_epochs"] is not None and options["max_epochs"] <= 0:
            raise CommandError("--max-epochs must be a positive integer.")
        only = options["only"]
        # each step's wall time, one "time <step>: N s" line (bench/training_cost.py reads them)
        started = time.perf_counter()
        for step, run in (
            ("two_tower", lambda: self._two_tower(options)),
            ("covisitation", self._covisitation),
            ("ranker", lambda: self._ranker(options)),
        ):
            if only in (None, step):
                t, cpu = time.perf_counter(), time.process_time()
                detail = run()
                # this process's CPU seconds too (every thread): the load inflates them far less than wall
                parts = ", ".join(p for p in (f"cpu {time.process_time() - cpu:.1f} s", detail) if p)
                self.stdout.write(f"time {step}: {time.perf_counter() - t:.1f} s ({parts})")
        self.stdout.write(f"time total: {time.perf_counter() - started:.1f} s")

    def _covisitation(self) -> str:
        from recommendations.covisitation import covisitation_rebuild

        self.stdout.write(f"co-visitation rebuilt from the events: {covisitation_rebuild()} pairs")
        return ""

    def _ranker(self, options) -> str:
        try:
            version = ranker_registry.ranker_train_and_gate(
                seed=options["seed"], progress=not options["no_progress"]
            )
        except ranker_registry.TrainingBusy as exc:
            raise CommandError(f"{exc}; try again when it is done.") from exc
        except ValueError as exc:
            # too little history for a ranker (a new shop): the refresh of the rest stands, and serving
            # keeps its current path (the active ranker, if any, else single retrieval)
            self.stderr.write(f"ranker: not trained ({exc}); serving is unchanged")
            return ""
        training = version.metrics.get("training", {})
        self.stdout.write(
            f"ranker v{version.pk}: {version.status}{' (active)' if version.is_active else ''}. {version.reason}\n"
            f"{training.get('rounds')} trees on {training.get('groups')} users' candidates; artifact "
            f"{version.artifact_path}"
        )
        if "rows_seconds" not in training:
            return ""
        return (
            f"training rows {training['rows_seconds']:.1f} s, LightGBM {training['fit_seconds']:.1f} s, "
            f"training rows cpu {training.get('rows_cpu_seconds', 0.0):.1f} s, "
            f"LightGBM cpu {training.get('fit_cpu_seconds', 0.0):.1f} s"
        )

    def _two_tower(self, options) -> str:
        try:
            version = registry.model_train_and_gate(
                window_days=options["window_days"],
                seed=options["seed"],
                progress=not options["no_progress"],
                max_epochs=options["max_epochs"],
            )
        except registry.TrainingBusy as exc:
            raise CommandError(f"{exc}; try again when it is done.") from exc
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        history = version.metrics.get("training", [])
        self.stdout.write(
            f"v{version.pk}: {version.status}{' (active)' if version.is_active else ''}. {version.reason}\n"
            f"trained {len(history)} epochs (best {version.metrics.get('best_epoch')}) in "
            f"{version.training_seconds:.1f} s on {version.events} events; artifact {version.artifact_path}"
        )
        return f"training {version.training_seconds or 0.0:.1f} s"

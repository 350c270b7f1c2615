"""`python manage.py evaluate`: offline evaluation of the recommender and the baselines over the events
in the database; saves an EvaluationRun per protocol and prints a table. `--compare ID ID ...` prints
saved runs side by side instead. `--ablation` adds the re-ranking ablation (`training.ablation`): the
served path with each re-ranking step turned off in turn, stored in the run's summary and printed.
`--arms EXPERIMENT` scores each arm of an A/B experiment (`analytics.arm_evaluation`) against popularity.

The evaluation itself is the training app's (`training.evaluation`, the methods it trains in
`training.ranker.evaluation` and `training.two_tower.evaluation`); this command stores its results
(`analytics.services.evaluation_run_save`)."""

from __future__ import annotations

import functools
import math

from django.core.management.base import BaseCommand, CommandError

from analytics.selectors import EvaluationRun, evaluation_runs
from analytics.services import evaluation_run_save
from training import ablation, evaluation


def _fmt(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 100 else f"{value:.1f}"
    return str(value)


class Command(BaseCommand):
    help = "Evaluate the recommender against baselines offline (leave-one-out and/or temporal protocol)."

    def add_arguments(self, parser):
        parser.add_argument("--protocol", choices=[*evaluation.PROTOCOLS, "both"], default="both")
        parser.add_argument("--test-days", type=float, default=14.0, help="temporal: days after the cut.")
        parser.add_argument("--k", type=int, nargs="+", default=list(evaluation.DEFAULT_KS), dest="ks")
        parser.add_argument("--methods", nargs="+", help="Subset of methods (default: all).")
        parser.add_argument("--label", default="", help="A name saved with the run.")
        parser.add_argument("--no-progress", action="store_true")
        parser.add_argument("--compare", type=int, nargs="+", metavar="RUN_ID", help="Show saved runs.")
        parser.add_argument(
            "--arms",
            metavar="EXPERIMENT",
            help="Score each arm of this A/B experiment (its id or name) on the offline split, with "
            "popularity as the floor.",
        )
        parser.add_argument(
            "--ablation",
            action="store_true",
            help="Also score the served path with each re-ranking step turned off in turn (the cost of each "
            "business rule), from the same serving pass.",
        )
        parser.add_argument(
            "--ablation-set",
            action="append",
            default=[],
            metavar="SETTING=VALUE[,...]",
            help="With --ablation: one more row, the default profile with these settings changed "
            "(e.g. mmr_lambda=0.7). Repeatable.",
        )

    def handle(self, *args, **options):
        if options["compare"]:
            runs = evaluation_runs(ids=options["compare"])
            missing = sorted(set(options["compare"]) - {r.pk for r in runs})
            if missing:
                raise CommandError(f"No evaluation run with id {', '.join(map(str, missing))}.")
            self._print_compare(runs)
            return
        if any(k <= 0 for k in options["ks"]):
            raise CommandError("--k values must be positive integers.")
        if options["test_days"] <= 0:
            raise CommandError("--test-days must be positive.")
        try:
            settings = [ablation.settings_parse(text) for text in options["ablation_set"]]
        except ValueError as exc:
            raise CommandError(f"--ablation-set: {exc}") from exc
        if settings and not options["ablation"]:
            raise CommandError("--ablation-set needs --ablation.")
        variants = ablation.variants_build(settings) if options["ablation"] else []
        methods = options["methods"]
        arm_scorers: dict = {}
        experiment = None
        if options["arms"]:
            from analytics import arm_evaluation
            from analytics.experiments import experiment_find

            experiment = experiment_find(options["arms"])
            if experiment is None:
                raise CommandError(f"--arms: no experiment with id or name {options['arms']!r}.")
            if experiment.arms.count() < 2:
                raise CommandError(f"--arms: experiment {experiment.name!r} has fewer than two arms.")
            arm_scorers = arm_evaluation.arm_methods(experiment)
            methods = [*(methods or ["popularity"]), *arm_scorers]
        if variants and methods:
            methods = [*methods, *(v.method for v in variants if v.method not in methods)]
        protocols = evaluation.PROTOCOLS if options["protocol"] == "both" else (options["protocol"],)
        data = evaluation.events_load()
        if len(data.ts) == 0:
            raise CommandError("No events linked to catalog items: nothing to evaluate.")
        from training.ranker.evaluation import ablation_methods, cooccurrence_visit_factory, ranker_methods
        from training.served_recommender import served_scorer_factory
        from training.two_tower.evaluation import two_tower_scorer_factory

        progress = not options["no_progress"]
        for protocol in protocols:
            # served (the default path), the ranker's raw order and each source alone: one pass
            served = (
                ablation_methods(variants, progress=progress)
                if variants
                else ranker_methods(progress=progress)
            )
            try:
                result = evaluation.evaluation_run(
                    protocol=protocol,
                    ks=options["ks"],
                    test_days=options["test_days"],
                    methods=methods,
                    extra_scorers={
                        "cooccurrence_visit": cooccurrence_visit_factory,
                        **served,
                        "served_single_retrieval": functools.partial(
                            served_scorer_factory, progress=progress
                        ),
                        "two_tower": two_tower_scorer_factory,
                        **arm_scorers,
                    },
                    label=options["label"] or (f"arms:{experiment.name}" if experiment is not None else ""),
                    progress=progress,
                    data=data,
                )
            except ValueError as exc:
                raise CommandError(str(exc)) from exc
            if experiment is not None:
                from analytics.arm_evaluation import arm_summary

                result.summary = {**result.summary, "arms": arm_summary(experiment)}
            if variants and result.summary["users_evaluated"]:
                table = ablation.ablation_table(
                    result.metrics, variants, k=ablation.table_k(result.configuration["ks"])
                )
                result.summary = {**result.summary, "ablation": table}
            run = evaluation_run_save(result=result)
            self._print_run(run)
            if "ablation" in run.summary:
                self.stdout.write("")
                for line in ablation.ablation_lines(run.summary["ablation"]):
                    self.stdout.write(line)

    def _print_run(self, run: EvaluationRun) -> None:
        s = run.summary
        self.stdout.write(
            f"\nEvaluationRun #{run.pk}  protocol={run.protocol}  users={s['users_evaluated']}  "
            f"train_events={s['train_events']}  held_out={s['held_out_events']}  "
            f"active_items={s['active_items']}  time={run.duration_seconds:.1f}s  "
            f"fingerprint={run.dataset_fingerprint[:12]}"
        )
        if not s["users_evaluated"]:
            self.stdout.write("No user has a test item under this protocol.")
            return
        columns = list(next(iter(run.metrics.values())).keys())
        width = max(len(m) for m in run.metrics) + 2
        self.stdout.write("method".ljust(width) + " ".join(c.rjust(17) for c in columns))
        for method, values in run.metrics.items():
            self.stdout.write(method.ljust(width) + " ".join(_fmt(values.get(c)).rjust(17) for c in columns))

    def _print_compare(self, runs: list[EvaluationRun]) -> None:
        keys = sorted({(m, c) for r in runs for m, v in r.metrics.items() for c in v})
        header = "method / metric".ljust(36) + " ".join(f"#{r.pk} {r.protocol}".rjust(22) for r in runs)
        self.stdout.write(header)
        for method, column in keys:
            cells = [_fmt(r.metrics.get(method, {}).get(column)).rjust(22) for r in runs]
            self.stdout.write(f"{method} {column}".ljust(36) + " ".join(cells))

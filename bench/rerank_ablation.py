"""The re-ranking ablation on a validation slice, for choosing the default profile: what each business rule
costs the served path (the same table as `manage.py evaluate --ablation`), plus the rows of candidate
settings (`--set`, repeatable).

    RECSYS_DATA_DIR=/tmp/rab .venv/bin/python -m bench.rerank_ablation --protocol temporal --max-users 300 \\
        --set popularity_penalty=0,mmr_lambda=0.95 --set mmr_lambda=0.7

Runs against the database the environment points at (DATABASE_URL, or the embedded server under
RECSYS_DATA_DIR): the demo shop (`manage.py seed_demo` + `embed_items`) or the Online Retail bench database
(`DATABASE_URL=postgresql://postgres@/recsys_bench_twotower?host=$PWD/var/pg`). `--validation` (on by
default) removes the test targets first (`bench/ranker.py`'s `validation_data`), so the settings are chosen
without looking at the test targets. The ranker is trained on the split (at most `--ranker-users` users'
rows, 400 by default), as in bench/ranker.py. Prints one table; the run is saved as an EvaluationRun (label
"bench rerank ablation").
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "recsys_project.settings")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

RANKER_USERS = 400


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--protocol", choices=["leave-one-out", "temporal"], default="temporal")
    parser.add_argument("--max-users", type=int, default=300, help="Evaluated users (a fixed sample).")
    parser.add_argument("--test", action="store_true", help="Score the test targets, not validation.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", action="append", default=[], metavar="SETTING=VALUE[,...]")
    parser.add_argument(
        "--ranker-users",
        type=int,
        default=RANKER_USERS,
        help="Users whose next items train the ranker (bench/ranker.py's round-4 runs: 2500).",
    )
    args = parser.parse_args()
    dsn = os.environ.get("DATABASE_URL")
    from bench.harness import django_setup

    django_setup()
    from analytics.services import evaluation_run_save
    from training import ablation, evaluation
    from training.ranker.evaluation import ablation_methods

    settings = [ablation.settings_parse(text) for text in args.set]
    variants = ablation.variants_build(settings)
    data = evaluation.events_load()
    if not args.test:
        from bench.ranker import validation_data  # bench/ranker.py: the data without the test targets

        data = validation_data(data, args.protocol)
    started = time.perf_counter()
    result = evaluation.evaluation_run(
        protocol=args.protocol,
        methods=["ranker", "served", *(v.method for v in variants)],
        extra_scorers=ablation_methods(variants, seed=args.seed, max_users=args.ranker_users, progress=True),
        label="bench rerank ablation" + ("" if args.test else " validation"),
        progress=True,
        data=data,
        max_users=args.max_users,
    )
    table = ablation.ablation_table(result.metrics, variants, k=10)
    result.summary = {**result.summary, "ablation": table}
    run = evaluation_run_save(result=result)
    where = (dsn or "").split("?")[0] or f"embedded ({os.environ.get('RECSYS_DATA_DIR', 'var')})"
    print(
        f"\nrun #{run.pk} {args.protocol} {'test' if args.test else 'validation'} users="
        f"{run.summary['users_evaluated']} db={where} time={time.perf_counter() - started:.0f}s"
    )
    for method in ("ranker", "served"):
        print(f"{method:<28} ndcg@10={run.metrics[method]['ndcg@10']:.4f}")
    for line in ablation.ablation_lines(table):
        print(line)


if __name__ == "__main__":
    main()

"""Offline evaluation on Online Retail: wall time and peak memory of `manage.py evaluate`, per protocol.

    .venv/bin/python -m bench.evaluation [--setup] [--baselines-only]

Uses its own database on the embedded server, `recsys_bench_analytics` (never the development database).
`--setup` creates it, migrates, imports ../shared/data/online_retail with `import_online_retail` and embeds
the items with `embed_items` (about 3-4 minutes here). Then it runs `manage.py evaluate --protocol both`
as a child process and prints the run times it saved, the wall time and the child's peak RSS. The machine
is shared with other jobs: figures are noisy, read them as upper bounds.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time

from bench.harness import REPO, create_database, database_url, load_line

ONLINE_RETAIL = REPO.parent / "shared" / "data" / "online_retail" / "online_retail.csv.gz"
DB_NAME = "recsys_bench_analytics"
BASELINES = ["popularity", "cooccurrence", "content", "user_vector"]


def manage(*args: str) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": database_url(DB_NAME),
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    subprocess.run([sys.executable, str(REPO / "manage.py"), *args], check=True, env=env, cwd=REPO)


def setup() -> None:
    if not ONLINE_RETAIL.exists():
        raise SystemExit(f"{ONLINE_RETAIL} not found: this bench needs the Online Retail data")
    create_database(DB_NAME)
    manage("migrate", "-v0")
    manage("import_online_retail", str(ONLINE_RETAIL))
    manage("embed_items")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--setup", action="store_true", help="create, import and embed the bench database")
    parser.add_argument("--baselines-only", action="store_true", help="skip the served recommender")
    args = parser.parse_args()
    if args.setup:
        setup()
    label = f"bench-{int(time.time())}"
    command = ["evaluate", "--protocol", "both", "--label", label]
    if args.baselines_only:
        command += ["--methods", *BASELINES]
    started = time.perf_counter()
    manage(*command)
    wall = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024

    code = (
        "from analytics.models import EvaluationRun\n"
        f"for r in EvaluationRun.objects.filter(label={label!r}).order_by('pk'):\n"
        "    print(f'{r.protocol:14} {r.summary[\"users_evaluated\"]:6d} users  {r.duration_seconds:7.1f} s')\n"
    )
    print("\nprotocol       evaluated        run time (saved in the EvaluationRun)")
    manage("shell", "-v0", "-c", code)
    print(
        f"whole command: {wall:.1f} s wall, peak RSS of the child processes {peak_mb:.0f} MB; {load_line()}"
    )


if __name__ == "__main__":
    main()

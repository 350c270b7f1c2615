"""Bulk import benchmark: the whole UCI Online Retail file through `manage.py import_online_retail`.

    .venv/bin/python -m bench.import_online_retail [--file PATH] [--runs N]

Into its own database (recsys_bench_ingest on the embedded server, emptied first) and its own Redis DB.
Prints rows/s for a first import into empty tables and for a re-run of the same file (everything already
stored), wall-clock of the whole command including Django start-up, and the command's peak RSS.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time
from pathlib import Path

from bench.harness import REPO, Results
from bench.ingest_env import CpuSampler, bench_env, drop_queued_tasks, migrate_and_empty

DEFAULT_FILE = REPO.parent / "shared" / "data" / "online_retail" / "online_retail.csv.gz"


def count_lines(path: Path) -> int:
    import gzip

    with gzip.open(path, "rt") if path.suffix == ".gz" else path.open() as fh:
        return sum(1 for _ in fh) - 1


def child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_import(env, path: Path) -> tuple[float, float, float, str]:
    """Wall seconds, CPU seconds of the command, CPU seconds of its PostgreSQL backend, its summary line."""
    cpu = child_cpu()
    started = time.perf_counter()
    with CpuSampler(env) as postgres:
        proc = subprocess.run(
            [sys.executable, "manage.py", "import_online_retail", str(path)],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
            check=True,
        )  # the progress bar goes to stderr, i.e. to this terminal
    return time.perf_counter() - started, child_cpu() - cpu, postgres.seconds, proc.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path, default=DEFAULT_FILE)
    parser.add_argument("--runs", type=int, default=1, help="fresh imports to time (each into empty tables)")
    args = parser.parse_args()
    if not args.file.exists():
        sys.exit(
            f"{args.file} not found: this benchmark needs the UCI Online Retail CSV (see docs/importing.md)."
        )

    env = bench_env()
    rows = count_lines(args.file)
    results = Results()
    print(f"file: {args.file} ({rows:,} data rows, {args.file.stat().st_size / 1e6:.1f} MB)")
    fresh = []
    for run in range(1, args.runs + 1):
        migrate_and_empty(env)
        seconds, cpu, pg_cpu, summary = run_import(env, args.file)
        fresh.append((seconds, cpu, pg_cpu))
        print(
            f"fresh import #{run}: {seconds:.1f} s (CPU: {cpu:.1f} s command + {pg_cpu:.1f} s PostgreSQL), "
            f"{rows / seconds:,.0f} rows/s"
        )
        print(f"  {summary}")
    seconds, _cpu, _pg_cpu, summary = run_import(env, args.file)
    print(f"re-run (all stored already): {seconds:.1f} s, {rows / seconds:,.0f} rows/s\n  {summary}")
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    dropped = drop_queued_tasks(env)
    best, best_cpu, best_pg_cpu = min(fresh)
    results.add("rows in file", f"{rows:,}")
    results.add(f"fresh import, best of {len(fresh)} (wall, incl. ~1 s start-up)", f"{best:.1f} s")
    results.add("**rows/s, fresh import**", f"**{rows / best:,.0f}**")
    results.add("rows/s, re-run of the same file (0 new rows)", f"{rows / seconds:,.0f}")
    results.add(
        "CPU seconds: import command + its PostgreSQL backend", f"{best_cpu:.1f} + {best_pg_cpu:.1f} s"
    )
    results.add(
        "rows/s if those CPU seconds ran back to back (estimate for an idle machine)",
        f"{rows / (best_cpu + best_pg_cpu):,.0f}",
    )
    results.add("peak RSS of the import process", f"{peak_mb:,.0f} MB")
    results.print()
    print(f"(dropped {dropped} queued embedding/user-vector tasks from the bench Redis DB)")


if __name__ == "__main__":
    main()

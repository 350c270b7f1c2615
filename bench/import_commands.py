"""Import throughput of the import commands, this checkout against a baseline checkout in the same run.

    .venv/bin/python -m bench.import_commands [--command import_events] [--rows 100000] [--runs 3]
        [--baseline /tmp/base]   # e.g. `git worktree add /tmp/base <base commit>`

`import_events` and `import_catalog` import a JSON Lines file written here (deterministic: `--rows` events of
2,000 users over 20,000 items, a purchase in ten with value and quantity; or `--rows` items with a category,
a price, stock and attributes); `import_online_retail` imports the UCI Online Retail CSV (`--file`). Each
run empties the tables of the bench database (recsys_bench_ingest, as bench/import_online_retail.py) and
imports the whole file with one checkout's `manage.py`; with `--baseline` the checkouts alternate, run
after run, so both see the same load. Prints per run the wall time, rows/s, CPU seconds of the command and
of its PostgreSQL backend, and the 1-minute load average; then the best run of each and their ratio.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.harness import REPO, Results, load_average
from bench.import_online_retail import DEFAULT_FILE, count_lines
from bench.ingest_env import CpuSampler, bench_env, drop_queued_tasks, migrate_and_empty

COMMANDS = ("import_events", "import_catalog", "import_online_retail")
EVENT_TYPES = ("view", "view", "view", "click", "add_to_cart", "add_to_favorites", "purchase")


def write_events(path: Path, rows: int) -> None:
    rng = random.Random(0)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    with path.open("w") as out:
        for n in range(rows):
            event: dict[str, Any] = {
                "event_id": f"bench-{n}",
                "user_id": f"u{rng.randrange(2000)}",
                "session_id": f"s{rng.randrange(20000)}",
                "item_id": f"i{rng.randrange(20000)}",
                "event_type": rng.choice(EVENT_TYPES),
                "timestamp": (start + timedelta(seconds=n)).isoformat(),
                "device_type": "mobile",
            }
            if n % 10 == 0:
                event.update(
                    event_type="purchase", value=f"{rng.uniform(1, 200):.2f}", quantity=rng.randint(1, 5)
                )
            out.write(json.dumps(event) + "\n")


def write_items(path: Path, rows: int) -> None:
    rng = random.Random(0)
    with path.open("w") as out:
        for n in range(rows):
            item = {
                "id": f"i{n}",
                "title": f"Item {n} in a plain colour",
                "description": "A thing a shop sells. " * rng.randint(1, 5),
                "category_path": ["Home", f"Room {n % 20}", f"Shelf {n % 7}"],
                "price": f"{rng.uniform(1, 500):.2f}",
                "currency": "EUR",
                "brand": f"Brand {n % 50}",
                "stock": rng.randint(0, 40),
                "attributes": {"colour": rng.choice(["red", "blue", "green"]), "size": n % 5},
            }
            out.write(json.dumps(item) + "\n")


def child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_import(checkout: Path, env: dict[str, str], command: str, path: Path) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds of the command, CPU seconds of its PostgreSQL backend."""
    cpu = child_cpu()
    started = time.perf_counter()
    with CpuSampler(env) as postgres:
        subprocess.run(
            [sys.executable, "manage.py", command, str(path), "--no-progress"],
            cwd=checkout,
            env=env,
            stdout=subprocess.DEVNULL,
            check=True,
        )
    return time.perf_counter() - started, child_cpu() - cpu, postgres.seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--command", choices=COMMANDS, default="import_events")
    parser.add_argument("--rows", type=int, default=100_000, help="rows written (import_events/_catalog)")
    parser.add_argument("--file", type=Path, default=DEFAULT_FILE, help="the CSV of import_online_retail")
    parser.add_argument("--runs", type=int, default=3, help="imports per checkout")
    parser.add_argument("--baseline", type=Path, help="another checkout (e.g. the base commit's worktree)")
    args = parser.parse_args()

    env = bench_env()
    checkouts = {"this": REPO, **({"baseline": args.baseline.resolve()} if args.baseline else {})}
    with tempfile.TemporaryDirectory() as tmp:
        if args.command == "import_online_retail":
            path, rows = args.file, count_lines(args.file)
        else:
            path, rows = Path(tmp) / f"{args.command}.jsonl", args.rows
            (write_events if args.command == "import_events" else write_items)(path, rows)
        print(f"{args.command}: {rows:,} rows, {path.stat().st_size / 1e6:.1f} MB; checkouts: {checkouts}")
        results = Results()
        walls: dict[str, list[float]] = {name: [] for name in checkouts}
        cpus: dict[str, list[float]] = {name: [] for name in checkouts}
        for run in range(1, args.runs + 1):
            for name, checkout in checkouts.items():
                migrate_and_empty(env)
                load = load_average()
                wall, cpu, pg_cpu = run_import(checkout, env, args.command, path)
                print(
                    f"run {run} {name:8}: {wall:6.1f} s = {rows / wall:8,.0f} rows/s; CPU {cpu:.1f} s command "
                    f"+ {pg_cpu:.1f} s PostgreSQL = {rows / (cpu + pg_cpu):8,.0f} rows/CPU-s; load {load:.1f}",
                    flush=True,
                )
                walls[name].append(wall)
                cpus[name].append(cpu + pg_cpu)
    dropped = drop_queued_tasks(env)
    for name in checkouts:
        results.add(f"{name}: best of {args.runs}, wall (incl. ~1 s start-up)", f"{min(walls[name]):.1f} s")
        results.add(f"**{name}: rows/s**", f"**{rows / min(walls[name]):,.0f}**")
        results.add(
            f"{name}: rows per CPU-second (command + PostgreSQL; best, the estimate for an idle machine)",
            f"{rows / min(cpus[name]):,.0f}",
        )
    if args.baseline:
        results.add(
            "rows/s, this / baseline (best runs)", f"{min(walls['baseline']) / min(walls['this']):.2f}"
        )
        results.add(
            "rows per CPU-second, this / baseline", f"{min(cpus['baseline']) / min(cpus['this']):.2f}"
        )
    results.print()
    print(f"(dropped {dropped} queued tasks from the bench Redis DB)")


if __name__ == "__main__":
    main()

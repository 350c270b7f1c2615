"""Demo-shop generator: generation speed, and the time to load a shop of a given size.

    .venv/bin/python -m bench.demo_shop --items 100000 --users 10000            # generate only
    RECSYS_DATA_DIR=/tmp/rbd .venv/bin/python -m bench.demo_shop --items 100000 --users 10000 --load

`--load` runs `manage.py seed_demo` in a child process against the database the environment points at (use a
throwaway RECSYS_DATA_DIR: it gets its own embedded PostgreSQL, stopped afterwards with `manage.py services
stop`), and reports wall time, items/s, events/s and the child's peak RSS. The machine is shared and has 2
cores: figures are noisy.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import sys
import time
from collections import Counter

from bench.harness import REPO


def generate(items: int, users: int, seed: int) -> int:
    from demo.shop import DemoShop

    shop = DemoShop(items=items, users=users, seed=seed)
    started = time.perf_counter()
    shop.items_build()
    items_seconds = time.perf_counter() - started
    started = time.perf_counter()
    counts = Counter(event["event_type"] for event in shop.events_iter())
    events_seconds = time.perf_counter() - started
    total = sum(counts.values())
    print(f"generate items:  {items:,} in {items_seconds:.1f} s ({items / items_seconds:,.0f} items/s)")
    print(f"generate events: {total:,} in {events_seconds:.1f} s ({total / events_seconds:,.0f} events/s)")
    funnel = " ".join(f"{name}={counts[name]:,}" for name in ("view", "click", "add_to_cart", "purchase"))
    print(
        f"funnel: {funnel}; click/view {counts['click'] / counts['view']:.1%}, "
        f"purchase/view {counts['purchase'] / counts['view']:.1%}"
    )
    return total


def load(items: int, users: int, seed: int, events: int) -> None:
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=REPO, env=env, check=True)
    started = time.perf_counter()
    result = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "seed_demo",
            "--items",
            str(items),
            "--users",
            str(users),
            "--seed",
            str(seed),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"seed_demo failed:\n{result.stderr[-3000:]}")
    print(result.stdout.strip())
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    stored = re.search(r"events (\d+) stored", result.stdout)
    print(
        f"load (seed_demo, incl. startup): {seconds:.0f} s for {items:,} items + {events:,} events "
        f"({(items + events) / seconds:,.0f} rows/s); peak RSS {peak_mb:,.0f} MB; "
        f"events newly stored: {stored[1] if stored else '?'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--load", action="store_true", help="also load it with manage.py seed_demo")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "recsys_project.settings")
    events = generate(args.items, args.users, args.seed)
    if args.load:
        load(args.items, args.users, args.seed, events)


if __name__ == "__main__":
    main()

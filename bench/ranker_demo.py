"""bench/ranker.py on the demo shop (database recsys_bench_demo): the same quality table, every method from
one run per seed and protocol, on the synthetic shop a new user sees after `make demo`.

`--setup` creates the database on this data dir's embedded PostgreSQL, migrates it, loads the demo shop at
`make demo`'s size (`seed_demo`'s defaults: 3,000 items, 1,000 shoppers, seed 42) and embeds the catalog.
It does not replay `demo_warmup`'s simulated traffic: those events are the serving path's own answers
being clicked, which would let the served method grade itself. Every other option is bench/ranker.py's
(the result files get the suffix `_demo` unless `--tag` says otherwise).

  .venv/bin/python -m bench.ranker_demo --setup
  .venv/bin/python -m bench.ranker_demo --validation --seeds 0 --max-users 1000 --two-tower
  .venv/bin/python -m bench.ranker_demo --seeds 0 1 2 --jobs 2 --max-users 1000 --two-tower
"""

from __future__ import annotations

import os
import subprocess
import sys

from bench.harness import REPO, create_database, database_url

DATABASE = "recsys_bench_demo"
os.environ["BENCH_RANKER_DATABASE"] = DATABASE  # read by bench.ranker on import, and by its children
os.environ.setdefault("DATABASE_URL", database_url(DATABASE))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def setup() -> None:
    """migrate, seed_demo (defaults), embed_items --all: each a manage.py child on the demo database. The
    first one starts the embedded PostgreSQL if need be; the database is created once it answers."""
    env = dict(os.environ)
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "check"], cwd=REPO, env=dict(env, DATABASE_URL=""), check=True)
    create_database(DATABASE)
    for command in (["migrate", "-v", "0"], ["seed_demo"], ["embed_items", "--all"]):
        subprocess.run([*manage, *command], cwd=REPO, env=env, check=True)


def main() -> None:
    if "--setup" in sys.argv[1:]:
        setup()
        return
    from bench import ranker

    if not any(arg.startswith("--tag") for arg in sys.argv[1:]):
        sys.argv.append("--tag=_demo")
    ranker.main()


if __name__ == "__main__":
    main()

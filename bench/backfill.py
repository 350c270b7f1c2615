"""Backfill: time and peak memory to embed the whole Online Retail catalog with `manage.py embed_items`.

    .venv/bin/python -m bench.backfill

Loads the distinct Online Retail stock codes (title = Description) into the bench database (`bench_embed`,
see bench/freshness.py) with item_upsert, then runs `manage.py embed_items --all` as a child process and
reports its wall time, its throughput and its peak RSS (from the kernel's accounting of the child). The
machine is shared: figures are noisy.
"""

from __future__ import annotations

import csv
import gzip
import resource
import subprocess
import sys
import time

from bench.harness import REPO

ONLINE_RETAIL = REPO.parent / "shared" / "data" / "online_retail" / "online_retail.csv.gz"


def main() -> None:
    if not ONLINE_RETAIL.exists():
        raise SystemExit(f"{ONLINE_RETAIL} not found: the backfill bench needs the Online Retail data")
    from bench.freshness import setup_env

    setup_env()
    import os

    from bench.harness import django_setup

    django_setup()
    from django.core.management import call_command
    from django.db import connection

    from catalog.services import item_upsert
    from core.payloads import check_item

    call_command("migrate", verbosity=0)
    with connection.cursor() as cur:
        cur.execute(
            "TRUNCATE interactions_event, interactions_userprofile, catalog_item, catalog_category CASCADE"
        )
    items: dict[str, dict] = {}
    with gzip.open(ONLINE_RETAIL, "rt", encoding="utf-8", errors="replace") as fh:
        for row in csv.DictReader(fh):
            title = " ".join((row["Description"] or "").split())
            if title and row["StockCode"] not in items:
                items[row["StockCode"]] = {"id": row["StockCode"], "title": title, "price": row["UnitPrice"]}
    clean = [values for values, errors in map(check_item, items.values()) if not errors]
    for start in range(0, len(clean), 1000):
        item_upsert(items=clean[start : start + 1000])
    connection.close()
    print(f"{len(clean)} Online Retail items loaded into bench_embed; running embed_items ...", flush=True)
    started = time.monotonic()
    process = subprocess.run(
        [sys.executable, "manage.py", "embed_items", "--all"], cwd=REPO, env=dict(os.environ), text=True,
        capture_output=True,
    )  # fmt: skip
    elapsed = time.monotonic() - started
    print(process.stdout[-2000:])
    if process.returncode:
        raise SystemExit(process.stderr[-3000:])
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(
        f"backfill of {len(clean)} items: {elapsed:.1f} s wall including ~5-10 s of start-up and model load "
        f"({len(clean) / elapsed:.1f} items/s overall); peak RSS of the command {peak_mb:.0f} MB"
    )


if __name__ == "__main__":
    main()

"""Filtered recall: recall@100 of the pgvector backend's ANN candidates against exact search, without a
filter and with filters of decreasing selectivity, on 100,000 items (bench/serving_data.py).

    .venv/bin/python bench/filtered_recall.py [--queries 200]

For each filter, every query runs three ways through `PgvectorBackend`:
- ANN, forced (the HNSW index with iterative scans, whatever the estimate says),
- as served (the backend's own choice: ANN, or exact when the planner estimates few matching rows),
- exact (the index disabled: the ground truth).
recall@100 = |top-100 of the plan ∩ exact top-100| / |exact top-100|. Reported: mean, the worst 5% (5th
percentile) and the mean latency of each plan. Queries are user vectors (what personalised serving asks).
The machine is shared: latencies are noisy.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

K = 100


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=10_000)
    args = parser.parse_args()

    import serving_data

    serving_data.ensure(n_items=args.items, n_users=args.users)
    import numpy as np
    from django.db import connection
    from tqdm import tqdm

    from interactions.models import UserProfile
    from recommendations.retrieval import HardFilters
    from recommendations.retrieval import pgvector_backend as pgv

    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM catalog_item WHERE is_active AND in_stock")
        total = cur.fetchone()[0]
        # a department (~10%), a family (~2-3%), leaves of ~1% and ~0.3% of the catalog
        cur.execute("SELECT category_path[1:1], count(*) FROM catalog_item GROUP BY 1 ORDER BY 2 DESC")
        departments = cur.fetchall()
        cur.execute("SELECT category_path[1:2], count(*) FROM catalog_item GROUP BY 1 ORDER BY 2 DESC")
        families = cur.fetchall()
        cur.execute("SELECT category_path, count(*) FROM catalog_item GROUP BY 1 ORDER BY 2 DESC")
        leaves = cur.fetchall()
    department = min(departments, key=lambda row: abs(row[1] / total - 0.10))
    family = min(families, key=lambda row: abs(row[1] / total - 0.025))
    leaf_1 = min(leaves, key=lambda row: abs(row[1] / total - 0.01))
    leaf_03 = min(leaves, key=lambda row: abs(row[1] / total - 0.003))
    filters = {
        "none": HardFilters(),
        f"category {' > '.join(department[0])} ({department[1] / total:.1%})": HardFilters(
            category_prefix=tuple(department[0])
        ),
        f"category {' > '.join(family[0])} ({family[1] / total:.1%})": HardFilters(
            category_prefix=tuple(family[0])
        ),
        f"category {leaf_1[0][-1]} ({leaf_1[1] / total:.1%})": HardFilters(category_prefix=tuple(leaf_1[0])),
        f"category {leaf_03[0][-1]} ({leaf_03[1] / total:.1%})": HardFilters(
            category_prefix=tuple(leaf_03[0])
        ),
    }

    users = list(UserProfile.objects.order_by("?").values_list("embedding", flat=True)[: args.queries])
    queries = [np.asarray(u, dtype=np.float32) for u in users]
    backend = pgv.PgvectorBackend()

    def run(vector, flt, mode: str) -> tuple[list[int], float]:
        """ann / exact: one plan, straight (no estimate, no retry); served: the backend's own choice."""
        started = time.perf_counter()
        if mode == "served":
            found = [c.item_pk for c in backend.search(vector=vector, k=K, filters=flt)]
        else:
            where, params = pgv.filters_where(flt)
            params.update(q=pgv.vector_literal(vector), k=K)
            found = [pk for pk, _ in backend._query(where=where, params=params, exact=mode == "exact")]
        return found, (time.perf_counter() - started) * 1000

    print(f"{total} available items; {len(queries)} user-vector queries; k={K}; "
          f"ef_search={pgv.EF_SEARCH}, max_scan_tuples={pgv.MAX_SCAN_TUPLES}, exact below {pgv.EXACT_MAX_ROWS} "
          f"estimated rows", flush=True)  # fmt: skip
    rows = []
    for name, flt in filters.items():
        recalls = {"ann": [], "served": []}
        times = {"ann": [], "served": [], "exact": []}
        short = 0
        for vector in tqdm(queries, desc=name, leave=False):
            truth, t_exact = run(vector, flt, "exact")
            times["exact"].append(t_exact)
            for mode in ("ann", "served"):
                got, t = run(vector, flt, mode)
                times[mode].append(t)
                if truth:
                    recalls[mode].append(len(set(got) & set(truth)) / len(truth))
                short += mode == "ann" and len(got) < min(K, len(truth))
        row = {
            "filter": name,
            "ann_mean": statistics.fmean(recalls["ann"]),
            "ann_p5": float(np.percentile(recalls["ann"], 5)),
            "served_mean": statistics.fmean(recalls["served"]),
            "served_p5": float(np.percentile(recalls["served"], 5)),
            "ann_ms": statistics.fmean(times["ann"]),
            "served_ms": statistics.fmean(times["served"]),
            "exact_ms": statistics.fmean(times["exact"]),
            "short": short,
        }
        rows.append(row)
        print(
            f"{name:40s} ANN recall@100 mean {row['ann_mean']:.3f} worst5% {row['ann_p5']:.3f} | as served "
            f"mean {row['served_mean']:.3f} worst5% {row['served_p5']:.3f} | ms ann {row['ann_ms']:.1f} "
            f"served {row['served_ms']:.1f} exact {row['exact_ms']:.1f} | short ANN lists {short}",
            flush=True,
        )
    print(
        "\n| filter | ANN recall@100 mean | ANN worst 5% | as served mean | as served worst 5% | ANN ms | "
        "as served ms | exact ms |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['filter']} | {r['ann_mean']:.3f} | {r['ann_p5']:.3f} | {r['served_mean']:.3f} | "
            f"{r['served_p5']:.3f} | {r['ann_ms']:.1f} | {r['served_ms']:.1f} | {r['exact_ms']:.1f} |"
        )


if __name__ == "__main__":
    main()

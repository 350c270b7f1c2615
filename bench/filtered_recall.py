"""Filtered recall: recall@100 of the pgvector backend's ANN candidates against exact search, without a
filter and with filters of decreasing selectivity, on 100,000 items (bench/serving_data.py).

    .venv/bin/python -m bench.filtered_recall [--queries 200]

For each filter, every query runs through `PgvectorBackend`:
- exact (the index disabled): the ground truth, the exact top 100;
- ANN top-100: the HNSW plan with iterative scans, forced whatever the estimate says, asked for 100;
- ANN 500 candidates: the same plan asked for 500, what serving re-ranks (candidate_k default);
- as served, 500: the backend's own choice (ANN, or exact when the planner estimates few matching rows).
recall@100 = |answer ∩ exact top-100| / |exact top-100|. Reported: mean, the worst 5% (5th percentile) and
the mean latency of each. Queries are user vectors (what personalised serving asks).
The machine is shared: latencies are noisy.
"""

from __future__ import annotations

import argparse
import statistics
import time

from bench.harness import load_line, percentile

K = 100  # recall@K against the exact top K
CANDIDATES = 500  # what serving asks the backend for (RerankProfile.candidate_k default)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--ef-search", type=int, default=None, help="override RECSYS_HNSW_EF_SEARCH")
    args = parser.parse_args()

    from bench import serving_data

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
    if args.ef_search:
        pgv.EF_SEARCH = args.ef_search

    def run(vector, flt, mode: str, k: int = K) -> tuple[list[int], float]:
        """ann / exact: one plan, straight (no estimate, no retry); served: the backend's own choice."""
        started = time.perf_counter()
        if mode == "served":
            found = [c.item_pk for c in backend.search(vector=vector, k=k, filters=flt)]
        else:
            where, params = pgv.filters_where(flt)
            params.update(q=pgv.vector_literal(vector), k=k)
            found = [pk for pk, _ in backend._query(where=where, params=params, exact=mode == "exact")]
        return found, (time.perf_counter() - started) * 1000

    print(f"{total} available items; {len(queries)} user-vector queries; k={K}; "
          f"ef_search={pgv.EF_SEARCH}, max_scan_tuples={pgv.MAX_SCAN_TUPLES}, exact below {pgv.EXACT_MAX_ROWS} "
          f"estimated rows", flush=True)  # fmt: skip
    modes = {  # name: (plan, k)
        "ANN top-100": ("ann", K),
        "ANN 500 candidates": ("ann", CANDIDATES),
        "as served, 500": ("served", CANDIDATES),
    }
    rows = []
    for name, flt in filters.items():
        recalls: dict[str, list[float]] = {m: [] for m in modes}
        times: dict[str, list[float]] = {m: [] for m in [*modes, "exact"]}
        for vector in tqdm(queries, desc=name, leave=False):
            truth, t_exact = run(vector, flt, "exact")
            times["exact"].append(t_exact)
            for mode, (plan, k) in modes.items():
                got, t = run(vector, flt, plan, k)
                times[mode].append(t)
                if truth:
                    recalls[mode].append(len(set(got) & set(truth)) / len(truth))
        row = {"filter": name}
        for mode in modes:
            row[mode] = (statistics.fmean(recalls[mode]), percentile(recalls[mode], 5))
        row["ms"] = {m: statistics.fmean(v) for m, v in times.items()}
        rows.append(row)
        print(
            f"{name:40s} "
            + " | ".join(f"{m}: mean {row[m][0]:.3f} worst5% {row[m][1]:.3f}" for m in modes)
            + " | ms "
            + " ".join(f"{m}={v:.1f}" for m, v in row["ms"].items()),
            flush=True,
        )
    print(
        f"\nrecall@{K} against exact search: mean / worst 5% (5th percentile); mean ms per query; {load_line()}"
    )
    print("| filter | " + " | ".join(modes) + " | " + " | ".join(f"{m} ms" for m in [*modes, "exact"]) + " |")
    print("|---" * (1 + 2 * len(modes) + 1) + "|")
    for r in rows:
        print(
            f"| {r['filter']} | "
            + " | ".join(f"{r[m][0]:.3f} / {r[m][1]:.3f}" for m in modes)
            + " | "
            + " | ".join(f"{r['ms'][m]:.1f}" for m in [*modes, "exact"])
            + " |"
        )


if __name__ == "__main__":
    main()

"""HNSW build parameters on the serving benchmarks' clustered catalog (100,000 items, bench/serving_data.py):
for each (m, ef_construction), build time, index size, and recall@100 of user-vector queries against exact
search at the serving ef_search, with the serving scan settings (iterative scan, relaxed order).

    .venv/bin/python -m bench.hnsw_params [--queries 200] [--params 16:64,16:200,32:128]

Works on a scratch copy of (id, embedding) in the bench database (`bench_hnsw_params`, dropped at the end),
so the real index is not touched. Exact top-100 comes from numpy over the same vectors. The machine is
shared: build times and latencies are noisy (several helpers' jobs run at the same time).
"""

from __future__ import annotations

import argparse
import statistics
import time

from bench.harness import load_line, percentile

K = 100
TABLE = "bench_hnsw_params"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--params", default="16:64,16:200,32:128", help="m:ef_construction, comma-separated")
    parser.add_argument("--ef-search", default="100,200,400")
    args = parser.parse_args()

    from bench import serving_data

    serving_data.ensure()
    import numpy as np
    from django.db import connection
    from tqdm import tqdm

    from interactions.models import UserProfile
    from recommendations.retrieval import pgvector_backend as pgv

    def vectors_of(sql: str) -> tuple[np.ndarray, np.ndarray]:
        with connection.cursor() as cur:
            cur.execute(sql)
            rows = cur.fetchall()
        ids = np.array([r[0] for r in rows])
        return ids, np.stack([np.fromstring(r[1][1:-1], dtype=np.float32, sep=",") for r in rows])

    with connection.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {TABLE}")
        cur.execute(
            f"CREATE TABLE {TABLE} AS SELECT id, embedding FROM catalog_item "
            "WHERE is_active AND embedding IS NOT NULL"
        )
    ids, matrix = vectors_of(f"SELECT id, embedding::text FROM {TABLE} ORDER BY id")
    users = list(
        UserProfile.objects.order_by("external_id").values_list("embedding", flat=True)[: args.queries]
    )
    queries = np.stack([np.asarray(u, dtype=np.float32) for u in users])
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    sims = queries @ (matrix / np.linalg.norm(matrix, axis=1, keepdims=True)).T
    truth = [set(ids[np.argsort(-row, kind="stable")[:K]].tolist()) for row in sims]
    print(f"{len(ids)} vectors, {len(queries)} user-vector queries, recall@{K}", flush=True)

    results = []
    try:
        for spec in args.params.split(","):
            m, ef_c = (int(x) for x in spec.split(":"))
            with connection.cursor() as cur:
                cur.execute(f"DROP INDEX IF EXISTS {TABLE}_hnsw")
                cur.execute("SET maintenance_work_mem = '1GB'")
                started = time.perf_counter()
                cur.execute(
                    f"CREATE INDEX {TABLE}_hnsw ON {TABLE} USING hnsw (embedding vector_cosine_ops) "
                    f"WITH (m = {m}, ef_construction = {ef_c})"
                )
                build_s = time.perf_counter() - started
                cur.execute(f"SELECT pg_relation_size('{TABLE}_hnsw')")
                size_mb = cur.fetchone()[0] / 1e6
            print(f"m={m} ef_construction={ef_c}: built in {build_s:.0f} s, {size_mb:.0f} MB", flush=True)
            for ef in (int(x) for x in args.ef_search.split(",")):
                recalls, times = [], []
                for q, want in zip(
                    tqdm(queries, desc=f"m={m} efc={ef_c} ef={ef}", leave=False), truth, strict=True
                ):
                    literal = pgv.vector_literal(q)
                    started = time.perf_counter()
                    with connection.cursor() as cur:
                        cur.execute(
                            "SET LOCAL hnsw.iterative_scan = relaxed_order; "
                            f"SET LOCAL hnsw.ef_search = {ef}; SET LOCAL hnsw.max_scan_tuples = {pgv.MAX_SCAN_TUPLES}; "
                            f"SELECT id FROM {TABLE} ORDER BY embedding <=> %s::vector LIMIT {K}",
                            [literal],
                        )
                        while cur.description is None and cur.nextset():
                            pass
                        got = {r[0] for r in cur.fetchall()}
                    times.append((time.perf_counter() - started) * 1000)
                    recalls.append(len(got & want) / K)
                row = (m, ef_c, build_s, size_mb, ef, statistics.fmean(recalls), percentile(recalls, 5),
                       percentile(times, 50))  # fmt: skip
                results.append(row)
                print(
                    f"  ef_search={ef}: recall@{K} mean {row[5]:.3f}, worst 5% {row[6]:.3f}, p50 {row[7]:.1f} ms",
                    flush=True,
                )
    finally:
        with connection.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS {TABLE}")
    print(f"\n{load_line('at the end')}")
    print("| m | ef_construction | build s | size MB | ef_search | recall@100 mean | worst 5% | p50 ms |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r[0]} | {r[1]} | {r[2]:.0f} | {r[3]:.0f} | {r[4]} | {r[5]:.3f} | {r[6]:.3f} | {r[7]:.1f} |"
        )


if __name__ == "__main__":
    main()

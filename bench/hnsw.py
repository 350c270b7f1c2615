"""The ANN index: HNSW on `vector` (m / ef_construction variants) against an HNSW expression index on
`embedding::halfvec(384)`: build time, size, recall@10 against exact search, and query latency.

    .venv/bin/python -m bench.hnsw [--rows 50000] [--queries 200]

Vectors: the real item vectors in the bench database (run bench/backfill.py first: ~4k Online Retail
items), topped up to --rows with synthetic neighbours of them (a real vector plus Gaussian noise,
renormalised), because the real catalogs at hand are too small for an ANN index to matter. Queries are
real vectors with a little noise. Exact top-10 comes from numpy. Works in a scratch table `bench_hnsw` of
the bench database, dropped at the end. The machine is shared: timings are noisy.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from bench.harness import load_line, percentile

DIM = 384


def vec_text(v: np.ndarray) -> str:
    return "[" + ",".join(f"{x:.7g}" for x in v) + "]"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=50000)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    from bench.freshness import setup_env

    setup_env()
    import psycopg
    from pgvector.psycopg import register_vector

    from core import embedded

    conn = psycopg.connect(
        host=str(embedded.pgdata_dir()), user="postgres", dbname="bench_embed", autocommit=True
    )
    register_vector(conn)
    real = conn.execute("SELECT embedding FROM catalog_item WHERE embedding IS NOT NULL").fetchall()
    if not real:
        raise SystemExit("no item vectors in bench_embed: run bench/backfill.py first")
    base = np.array([r[0].to_numpy() for r in real], dtype=np.float32)
    rng = np.random.default_rng(0)
    extra = args.rows - len(base)
    if extra > 0:
        seeds = base[rng.integers(0, len(base), size=extra)]
        noisy = seeds + rng.normal(scale=0.6 / np.sqrt(DIM), size=seeds.shape).astype(np.float32)
        data = np.vstack([base, noisy / np.linalg.norm(noisy, axis=1, keepdims=True)]).astype(np.float32)
    else:
        data = base[: args.rows]
    queries = data[rng.integers(0, len(base), size=args.queries)]
    queries = queries + rng.normal(scale=0.3 / np.sqrt(DIM), size=queries.shape).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    exact = np.argsort(-(queries @ data.T), axis=1)[:, :10]
    print(
        f"{len(data)} vectors ({len(base)} real, {max(extra, 0)} synthetic neighbours), {len(queries)} queries"
    )

    conn.execute("DROP TABLE IF EXISTS bench_hnsw")
    conn.execute(f"CREATE TABLE bench_hnsw (id int PRIMARY KEY, embedding vector({DIM}))")
    with conn.cursor().copy("COPY bench_hnsw (id, embedding) FROM STDIN WITH (FORMAT BINARY)") as copy:
        copy.set_types(["int4", "vector"])
        for i, v in enumerate(data):
            copy.write_row([i, v])
    conn.execute("VACUUM ANALYZE bench_hnsw")
    conn.execute("SET maintenance_work_mem = '1GB'")
    table_mb = conn.execute("SELECT pg_total_relation_size('bench_hnsw')").fetchone()[0] / 2**20
    print(f"table with {DIM}-d float32 vectors: {table_mb:.0f} MB")

    configs = [
        (
            "vector, m=16, ef_construction=64",
            "embedding vector_cosine_ops",
            "embedding",
            "%s::vector",
            16,
            64,
        ),
        (
            "vector, m=16, ef_construction=128",
            "embedding vector_cosine_ops",
            "embedding",
            "%s::vector",
            16,
            128,
        ),
        (
            "halfvec expr, m=16, ef_construction=64",
            f"(embedding::halfvec({DIM})) halfvec_cosine_ops",
            f"embedding::halfvec({DIM})",
            f"%s::halfvec({DIM})",
            16,
            64,
        ),
    ]
    header = f"{'index':<40} {'build s':>8} {'size MB':>8} {'ef_search':>9} {'recall@10':>9} {'p50 ms':>7} {'p95 ms':>7}"
    print(header)
    for label, definition, order_expr, param, m, efc in configs:
        conn.execute("DROP INDEX IF EXISTS bench_hnsw_idx")
        started = time.perf_counter()
        conn.execute(
            f"CREATE INDEX bench_hnsw_idx ON bench_hnsw USING hnsw ({definition}) WITH (m = {m}, ef_construction = {efc})"
        )
        build = time.perf_counter() - started
        size_mb = conn.execute("SELECT pg_relation_size('bench_hnsw_idx')").fetchone()[0] / 2**20
        for ef_search in (40, 100):
            conn.execute(f"SET hnsw.ef_search = {ef_search}")
            hits, latencies = 0, []
            sql = f"SELECT id FROM bench_hnsw ORDER BY {order_expr} <=> {param} LIMIT 10"
            plan = conn.execute("EXPLAIN " + sql, [vec_text(queries[0])]).fetchall()
            assert any("bench_hnsw_idx" in row[0] for row in plan), plan
            for q in queries[:50]:  # warm the index pages into shared buffers first: timings, not I/O
                conn.execute(sql, [vec_text(q)]).fetchall()
            for q, truth in zip(queries, exact, strict=True):
                text = vec_text(q)
                t = time.perf_counter()
                ids = [row[0] for row in conn.execute(sql, [text]).fetchall()]
                latencies.append((time.perf_counter() - t) * 1000)
                hits += len(set(ids) & set(truth.tolist()))
            recall = hits / (10 * len(queries))
            p95 = percentile(latencies, 95)
            print(
                f"{label:<40} {build:>8.1f} {size_mb:>8.1f} {ef_search:>9} {recall:>9.3f} "
                f"{percentile(latencies, 50):>7.2f} {p95:>7.2f}",
                flush=True,
            )
    conn.execute("DROP TABLE bench_hnsw")
    print(load_line("at the end"))


if __name__ == "__main__":
    main()

"""FAISS vs pgvector: build time and memory, ANN latency (single query and under concurrency), recall@100
against exact search with and without a selective filter, and end-to-end API latency.

    .venv/bin/python -m bench.faiss_bench --items 100000                       # both backends, flat + HNSW
    .venv/bin/python -m bench.faiss_bench --items 1000000 --backends faiss --faiss-types hnsw
    .venv/bin/python -m bench.faiss_bench --items 100000 --drop                  # then drop the bench database

The catalog is generated, 384-d and clustered like text embeddings rather than uniform noise: 40 topics x
~25 sub-clusters (Zipf-sized, varied spread) in a 48-d latent space, projected to 384-d plus a little
isotropic noise, L2-normalised. 200 leaf categories plus one holding 1% of the items ("Rare", the selective
filter); 5% of the items are out of stock. Queries come from the same distribution (other seed).

It lives in its own database, `recsys_bench_faiss` on the embedded server (never the dev database), loaded
with binary COPY; pgvector's HNSW index (with the m and ef_construction the catalog model declares) is built after
the load. The FAISS index is built by `manage.py build_faiss_index` in a child process (its peak RSS is the
build memory) and written under /tmp/recsys_bench_faiss/ (removed at the end).

Recall@100 is per query |returned ∩ exact| / 100; "worst 5%" is the 5th percentile over queries. The
selective filter is category = Rare (1% of items) and in stock. The API figures go through gunicorn on
loopback (Api-Key auth, retrieval with k = the profile's candidate_k, re-ranking, hydration, the served-list
INSERT) on `GET /recommendations/items/{id}/similar`. The machine has 2 cores shared with other work: all
figures are noisy, and the load generator competes with the server for the same cores.
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import shutil
import subprocess
import threading
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import numpy as np

from bench.harness import (
    REPO,
    cores,
    create_database,
    embedded_pg_host,
    load_average,
    percentile,
    redis_url,
    start_gunicorn,
)

BENCH_DB = "recsys_bench_faiss"
PGDATA = embedded_pg_host()
WORK_DIR = Path("/tmp/recsys_bench_faiss")
REDIS_DB = 10
DIM = 384
K = 100
RARE = "Rare"
# Rows per binary COPY batch (10,000 x 384-d is ~16 MB on the wire).
COPY_BATCH = 10_000


def setup_env() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ["DJANGO_SETTINGS_MODULE"] = "recsys_project.settings"
    os.environ["ALLOWED_HOSTS"] = "testserver,localhost,127.0.0.1"
    os.environ["RECSYS_HTTPS"] = "0"
    os.environ["RECSYS_API_RATE"] = "1000000/min"
    os.environ["LOG_LEVEL"] = "WARNING"
    os.environ["DATABASE_URL"] = create_database(BENCH_DB, host=PGDATA)
    os.environ["REDIS_URL"] = redis_url(REDIS_DB)
    # The FAISS index goes under RECSYS_DATA_DIR/faiss: a throwaway directory (Postgres is DATABASE_URL).
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    os.environ["RECSYS_DATA_DIR"] = str(WORK_DIR)


def drop_db() -> None:
    import psycopg

    with psycopg.connect(host=str(PGDATA), user="postgres", dbname="postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')
    shutil.rmtree(WORK_DIR, ignore_errors=True)
    print(f"dropped {BENCH_DB} and {WORK_DIR}")


# --- the catalog


def _world(latent: int = 48, topics: int = 40, clusters: int = 1000):
    world = np.random.default_rng(1234)
    projection = world.normal(size=(latent, DIM)) / np.sqrt(latent)
    topic_centres = world.normal(size=(topics, latent))
    centres = topic_centres[world.integers(0, topics, clusters)] + world.normal(size=(clusters, latent)) * 0.6
    spread = world.uniform(0.25, 0.8, size=clusters)
    weights = world.zipf(1.6, size=clusters).astype(float)
    weights = np.minimum(weights, 200.0)
    return projection, centres, spread, weights / weights.sum()


def vectors_generate(n: int, *, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, 384) unit vectors and each one's cluster."""
    projection, centres, spread, weights = _world()
    rng = np.random.default_rng(seed)
    out = np.empty((n, DIM), np.float32)
    which = rng.choice(len(centres), size=n, p=weights)
    for start in range(0, n, 100_000):
        w = which[start : start + 100_000]
        z = centres[w] + rng.normal(size=(len(w), centres.shape[1])) * spread[w, None]
        v = z @ projection + rng.normal(size=(len(w), DIM)) * 0.04
        out[start : start + len(w)] = v / np.linalg.norm(v, axis=1, keepdims=True)
    return out, which


def catalog_generate(n: int):
    vectors, clusters = vectors_generate(n, seed=7)
    rng = np.random.default_rng(8)
    leaves = clusters % 200  # categories follow the clusters, loosely (several clusters per leaf)
    rare = rng.random(n) < 0.01
    paths = [[RARE] if rare[i] else [f"Dept {leaves[i] // 10}", f"Leaf {leaves[i]}"] for i in range(n)]
    prices = np.round(np.exp(rng.normal(3.5, 1.0, size=n)), 2)
    in_stock = rng.random(n) > 0.05
    return vectors, paths, prices, in_stock, rare


def catalog_load(vectors, paths, prices, in_stock) -> None:
    from django.db import connection
    from pgvector.psycopg import register_vector
    from psycopg.types.json import Jsonb
    from tqdm import tqdm

    from catalog.embedding import current_model_name

    model = current_model_name()
    now = datetime.now(UTC)
    connection.ensure_connection()
    conn = connection.connection
    register_vector(conn)
    with conn.cursor() as cur:
        cur.execute("TRUNCATE catalog_item, catalog_category CASCADE")
        cur.execute("DROP INDEX IF EXISTS item_embedding_hnsw")
    conn.commit()
    columns = (
        "external_id, title, description, category_path, price, currency, brand, location, condition, "
        "image_url, attributes, in_stock, published_at, is_active, content_hash, embedding, embedded_hash, "
        "embedding_model, embedded_at, embedding_dirty, created_at, updated_at"
    )
    types = [
        "text", "text", "text", "varchar[]", "numeric", "text", "text", "text", "text", "text", "jsonb", "bool",
        "timestamptz", "bool", "text", "vector", "text", "text", "timestamptz", "bool", "timestamptz", "timestamptz",
    ]  # fmt: skip
    started = time.perf_counter()
    n = len(vectors)
    with conn.cursor() as cur:
        for start in tqdm(range(0, n, COPY_BATCH), desc="COPY items", unit="batch"):
            with cur.copy(f"COPY catalog_item ({columns}) FROM STDIN WITH (FORMAT BINARY)") as copy:
                copy.set_types(types)
                for i in range(start, min(start + COPY_BATCH, n)):
                    copy.write_row(
                        [
                            f"item-{i}", f"Product {i}", "", paths[i], Decimal(str(prices[i])), "EUR", "", "", "new",
                            "", Jsonb({}), bool(in_stock[i]), now, True, "", vectors[i], "", model, now, False, now,
                            now,
                        ]
                    )  # fmt: skip
        cur.execute("ANALYZE catalog_item")
    conn.commit()
    print(f"loaded {n} items in {time.perf_counter() - started:.1f} s", flush=True)


def pgvector_index_params() -> tuple[int, int]:
    """m and ef_construction of the catalog's HNSW index as the model declares it (what migrate builds)."""
    from catalog.models import Item

    index = next(i for i in Item._meta.indexes if i.name == "item_embedding_hnsw")
    return index.m, index.ef_construction


def pgvector_index_build() -> dict:
    from django.db import connection

    started = time.perf_counter()
    m, ef_construction = pgvector_index_params()
    with connection.cursor() as cur:
        cur.execute("DROP INDEX IF EXISTS item_embedding_hnsw")
        cur.execute("SET maintenance_work_mem = '1GB'")
        cur.execute(
            "CREATE INDEX item_embedding_hnsw ON catalog_item USING hnsw (embedding vector_cosine_ops) "
            f"WITH (m = {int(m)}, ef_construction = {int(ef_construction)})"
        )
        cur.execute("ANALYZE catalog_item")
        cur.execute("SELECT pg_relation_size('item_embedding_hnsw')")
        size = cur.fetchone()[0]
    return {
        "build_s": time.perf_counter() - started,
        "memory": f"index {size / 2**20:.0f} MB (shared buffers)",
    }


# --- measuring


def ground_truth(vectors, in_stock, rare, queries):
    """Exact top-K among in-stock items, and among in-stock Rare items (brute force, all threads)."""
    import faiss

    faiss.omp_set_num_threads(2)
    allowed = np.flatnonzero(in_stock)
    index = faiss.IndexFlatIP(DIM)
    index.add(vectors[allowed])
    _, ids = index.search(queries, K)
    plain = [set(allowed[row].tolist()) for row in ids]
    allowed_rare = np.flatnonzero(in_stock & rare)
    scores = queries @ vectors[allowed_rare].T
    top = np.argsort(-scores, axis=1)[:, :K]
    filtered = [set(allowed_rare[row].tolist()) for row in top]
    return plain, filtered


def measure_backend(
    backend, queries, truth_plain, truth_rare, pk_to_row, *, concurrency: int, seconds: float
):
    from django.db import connection

    from recommendations.retrieval.base import HardFilters

    rare = HardFilters(category_prefix=(RARE,))
    plain = HardFilters()
    backend.search(vector=queries[0], k=K, filters=plain)  # warm (loads the FAISS index)
    out = {}
    for label, filters, truth in (("none", plain, truth_plain), ("rare 1%", rare, truth_rare)):
        lat, recalls = [], []
        for q, exact in zip(queries, truth, strict=True):
            t0 = time.perf_counter()
            hits = backend.search(vector=q, k=K, filters=filters)
            lat.append((time.perf_counter() - t0) * 1000)
            got = {pk_to_row[c.item_pk] for c in hits}
            recalls.append(len(got & exact) / K)
        out[label] = {
            "p50": percentile(lat, 50),
            "p99": percentile(lat, 99),
            "recall_mean": float(np.mean(recalls)),
            "recall_p5": percentile(recalls, 5),
        }
    # Under concurrency: `concurrency` threads, unfiltered queries, for `seconds`.
    lat_c: list[float] = []
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def loop(seed: int) -> None:
        rng = random.Random(seed)
        mine = []
        while time.perf_counter() < deadline:
            q = queries[rng.randrange(len(queries))]
            t0 = time.perf_counter()
            backend.search(vector=q, k=K, filters=plain)
            mine.append((time.perf_counter() - t0) * 1000)
        connection.close()
        with lock:
            lat_c.extend(mine)

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(concurrency)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    out["concurrent"] = {"p50": percentile(lat_c, 50), "p99": percentile(lat_c, 99), "qps": len(lat_c) / wall}
    return out


def faiss_build(index_type: str) -> dict:
    """`manage.py build_faiss_index` in a child: wall time, and its peak RSS (the build's memory)."""
    started = time.perf_counter()
    from core.processes import manage_argv

    child = subprocess.Popen(
        manage_argv("build_faiss_index", "--threads", "2", "--index-type", index_type), cwd=REPO
    )
    _pid, status, usage = os.wait4(child.pid, 0)  # this child's own rusage (peak RSS in KiB)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"build_faiss_index failed ({child.returncode})")
    wall = time.perf_counter() - started
    peak = usage.ru_maxrss
    from accelerator import store

    manifest = store.manifest_read()
    size = (manifest.directory / "index.faiss").stat().st_size
    return {
        "build_s": wall,
        "memory": f"index {size / 2**20:.0f} MB in RAM per process; build peak RSS {peak / 2**20:.1f} GB",
    }


# --- end to end through the API


def api_measure(*, backend: str, n_items: int, key: str, workers: int, requests: int, seconds: float) -> dict:
    env = dict(os.environ, DEBUG="0", RECSYS_VECTOR_BACKEND=backend)
    server, port = start_gunicorn(
        f"bench_faiss_gunicorn_{backend}", workers=workers, env=env, timeout=300, listen_timeout=60
    )

    def get(rng: random.Random) -> tuple[float, int]:
        path = f"/api/v1/recommendations/items/item-{rng.randrange(n_items)}/similar?limit=10"
        t0 = time.perf_counter()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        try:
            conn.request("GET", path, headers={"Authorization": f"Api-Key {key}"})
            response = conn.getresponse()
            response.read()
            return (time.perf_counter() - t0) * 1000, response.status
        finally:
            conn.close()

    try:
        warm = random.Random(0)
        # Every worker loads the index on its first request (FAISS); enough requests to reach them all.
        threads = [
            threading.Thread(target=lambda: [get(warm) for _ in range(10)]) for _ in range(workers * 2)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        rng = random.Random(1)
        single = [get(rng) for _ in range(requests)]
        errors = sum(status != 200 for _ms, status in single)
        lat_c: list[float] = []
        lock = threading.Lock()
        stop = time.perf_counter() + seconds

        def loop(seed: int) -> None:
            r = random.Random(seed)
            mine = []
            while time.perf_counter() < stop:
                mine.append(get(r))
            with lock:
                lat_c.extend(mine)

        threads = [threading.Thread(target=loop, args=(10 + i,)) for i in range(8)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
        lat1 = [ms for ms, _s in single]
        lat8 = [ms for ms, _s in lat_c]
        errors += sum(status != 200 for _ms, status in lat_c)
        return {
            "p50": percentile(lat1, 50),
            "p99": percentile(lat1, 99),
            "c8_p50": percentile(lat8, 50),
            "c8_p99": percentile(lat8, 99),
            "rps": len(lat8) / wall,
            "errors": errors,
        }
    finally:
        server.stop(grace=30)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--backends", default="faiss,pgvector")
    parser.add_argument("--faiss-types", default="flat,hnsw")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--api-requests", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers for the API figures")
    parser.add_argument("--no-api", action="store_true")
    parser.add_argument("--skip-load", action="store_true", help="reuse the catalog already loaded")
    parser.add_argument("--drop", action="store_true", help="drop the bench database and files, then exit")
    args = parser.parse_args()
    if args.drop:
        drop_db()
        return
    setup_env()
    from bench.harness import django_setup

    django_setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    backends = [b for b in args.backends.split(",") if b]
    t0 = time.perf_counter()
    vectors, paths, prices, in_stock, rare = catalog_generate(args.items)
    print(f"generated {args.items} items in {time.perf_counter() - t0:.1f} s", flush=True)
    if not args.skip_load:
        catalog_load(vectors, paths, prices, in_stock)
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT id, external_id FROM catalog_item")
        pk_to_row = {pk: int(ext.split("-")[1]) for pk, ext in cur.fetchall()}
    assert len(pk_to_row) == args.items, "the loaded catalog has another size: run without --skip-load"
    queries, _ = vectors_generate(args.queries, seed=99)
    truth_plain, truth_rare = ground_truth(vectors, in_stock, rare, queries)
    print(f"exact ground truth for {args.queries} queries; Rare items: {int(rare.sum())}", flush=True)

    rows = []
    if "pgvector" in backends:
        from recommendations.retrieval.pgvector_backend import PgvectorBackend

        build = pgvector_index_build()
        print(f"pgvector HNSW build {build['build_s']:.1f} s, {build['memory']}", flush=True)
        figures = measure_backend(
            PgvectorBackend(), queries, truth_plain, truth_rare, pk_to_row,
            concurrency=args.concurrency, seconds=args.seconds,
        )  # fmt: skip
        m, ef_construction = pgvector_index_params()
        rows.append(("pgvector", f"HNSW m={m} ef_c={ef_construction} ef_s=200", build, figures))
    if "faiss" in backends:
        from accelerator.backend import FaissBackend

        for index_type in [t for t in args.faiss_types.split(",") if t]:
            build = faiss_build(index_type)
            print(f"faiss {index_type} build {build['build_s']:.1f} s, {build['memory']}", flush=True)
            figures = measure_backend(
                FaissBackend(), queries, truth_plain, truth_rare, pk_to_row,
                concurrency=args.concurrency, seconds=args.seconds,
            )  # fmt: skip
            label = "IndexFlatIP (exact)" if index_type == "flat" else "HNSW M=32 ef_c=80 ef_s=200"
            rows.append(("faiss", label, build, figures))

    api = {}
    if not args.no_api:
        from core.models import ApiKey

        _key, raw = ApiKey.generate(name=f"faiss bench {os.getpid()}")
        connection.close()
        for backend in backends:
            api[backend] = api_measure(
                backend=backend, n_items=args.items, key=raw, workers=args.workers,
                requests=args.api_requests, seconds=args.seconds,
            )  # fmt: skip
            print(f"API {backend}: {api[backend]}", flush=True)

    n = f"{args.items:,}"
    print(
        f"\n{n} items, {args.queries} queries, k={K}, concurrency {args.concurrency} "
        f"({cores()} shared cores, 1-min load average {load_average():.1f}; noisy)\n"
    )
    print(
        "| items | backend | index | build s | memory | p50 ms | p99 ms | p50 ms (rare 1%) | p99 ms (rare 1%) | "
        f"c={args.concurrency} p50 / p99 ms | c={args.concurrency} qps | recall@100 mean / worst 5% | "
        "recall@100 rare 1% mean / worst 5% |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for backend, label, build, f in rows:
        plain, rare_f, conc = f["none"], f["rare 1%"], f["concurrent"]
        print(
            f"| {n} | {backend} | {label} | {build['build_s']:.0f} | {build['memory']} | {plain['p50']:.1f} | "
            f"{plain['p99']:.1f} | {rare_f['p50']:.1f} | {rare_f['p99']:.1f} | {conc['p50']:.1f} / "
            f"{conc['p99']:.1f} | {conc['qps']:.0f} | {plain['recall_mean']:.3f} / {plain['recall_p5']:.2f} | "
            f"{rare_f['recall_mean']:.3f} / {rare_f['recall_p5']:.2f} |"
        )
    if api:
        print(f"\nAPI GET /recommendations/items/{{id}}/similar, gunicorn {args.workers} workers\n")
        print("| items | backend | p50 ms | p99 ms | c=8 p50 ms | c=8 p99 ms | c=8 req/s | errors |")
        print("|---|---|---|---|---|---|---|---|")
        for backend, a in api.items():
            print(
                f"| {n} | {backend} | {a['p50']:.1f} | {a['p99']:.1f} | {a['c8_p50']:.1f} | {a['c8_p99']:.1f} | "
                f"{a['rps']:.1f} | {a['errors']} |"
            )


if __name__ == "__main__":
    main()

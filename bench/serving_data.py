"""The serving benchmarks' database: `recsys_bench_serve` on the embedded server (never the dev database),
with a generated catalog of 100,000 items and 10,000 users.

    .venv/bin/python -m bench.serving_data [--items 100000] [--users 10000] [--force]

Vectors are synthetic but clustered like real product embeddings, instead of running the model over
100k texts: 10 departments x 4 families x 5 leaf categories (200 leaves); an item's vector is its
department, family and leaf directions plus its brand's direction plus noise, L2-normalised. Users have
~20 events each (views, clicks, carts, purchases) over the last 30 days on items of 1-3 favourite leaves,
and their vector is the normalised mean of those items' vectors (what the user-vector task computes).
Semantic search still embeds the query with the real model at request time.

Loaded with binary COPY (pgvector's psycopg adapter); the HNSW index is dropped before the load and built
after it (m=32, ef_construction=128, as the migration declares), which is several times faster than
inserting into the graph row by row.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np

from bench.harness import create_database, data_dir, database_url, redis_url

BENCH_DB = "recsys_bench_serve"
REDIS_DB = int(os.environ.get("RECSYS_BENCH_REDIS_DB", "14"))  # a concurrent run sets its own
DIM = 384
SEED = 20261122
DEPARTMENTS, FAMILIES, LEAVES = 10, 4, 5
BRANDS = 500
EVENTS_PER_USER = 20
# Rows per COPY batch: 10,000 items with vectors is ~16 MB on the wire; the whole load of 100k items
# took ~60 s here plus ~90 s for the index build (embedded Postgres, 2 shared cores).
COPY_BATCH = 10_000


def setup_env() -> str:
    """Points Django at the bench database (created if missing) and Redis db 14.

    DATABASE_URL must be set before anything imports `recsys_project`: importing the package starts the
    Celery app, which evaluates the settings, and DATABASES is computed once, at that moment. (Set after,
    it was silently ignored and the dev database was used instead.)"""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    os.environ["DJANGO_SETTINGS_MODULE"] = "recsys_project.settings"
    os.environ["ALLOWED_HOSTS"] = "testserver,localhost,127.0.0.1"
    os.environ["RECSYS_HTTPS"] = "0"
    os.environ["RECSYS_API_RATE"] = "1000000/min"
    os.environ["LOG_LEVEL"] = "WARNING"
    if "recsys_project" in sys.modules:
        raise RuntimeError("setup_env() must run before recsys_project is imported")
    os.environ["RECSYS_DATA_DIR"] = str(data_dir())
    os.environ["DATABASE_URL"] = database_url(BENCH_DB)
    os.environ["REDIS_URL"] = redis_url(REDIS_DB)
    from core import embedded

    embedded.embedded_postgres_start()
    return create_database(BENCH_DB)


def _check_bench_database() -> None:
    """Refuses to touch any database but the bench one (the loader truncates tables)."""
    from django.db import connection

    name = connection.settings_dict["NAME"]
    if name != BENCH_DB:
        raise SystemExit(f"refusing to run: Django is connected to {name!r}, not {BENCH_DB!r}")


def _unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=-1, keepdims=True)).astype(np.float32)


def category_tree() -> list[tuple[str, str, str]]:
    return [
        (f"Dept {d}", f"Family {d}.{f}", f"Leaf {d}.{f}.{leaf}")
        for d in range(DEPARTMENTS)
        for f in range(FAMILIES)
        for leaf in range(LEAVES)
    ]


def item_vectors(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(vectors, leaf index per item, brand index per item)."""
    n_leaves = DEPARTMENTS * FAMILIES * LEAVES
    dept = _unit(rng.normal(size=(DEPARTMENTS, DIM)))
    fam = _unit(rng.normal(size=(DEPARTMENTS * FAMILIES, DIM)))
    leaf = _unit(rng.normal(size=(n_leaves, DIM)))
    brand = _unit(rng.normal(size=(BRANDS, DIM)))
    # leaf sizes follow a long tail, as in real catalogs (a few big categories, many small ones)
    weights = 1.0 / np.arange(1, n_leaves + 1) ** 0.8
    leaves = rng.choice(n_leaves, size=n, p=weights / weights.sum())
    brands = (leaves * 7 + rng.integers(0, 25, size=n)) % BRANDS  # brands concentrate per category
    noise = rng.normal(size=(n, DIM)).astype(np.float32) / np.sqrt(DIM)
    vectors = (
        0.8 * dept[leaves // (FAMILIES * LEAVES)]
        + 0.8 * fam[leaves // LEAVES]
        + 1.0 * leaf[leaves]
        + 0.4 * brand[brands]
        + 1.0 * noise
    )
    return _unit(vectors), leaves, brands


def load(*, n_items: int, n_users: int) -> None:
    from bench.harness import django_setup

    django_setup()
    from django.core.management import call_command
    from django.db import connection
    from pgvector.psycopg import register_vector
    from tqdm import tqdm

    from catalog.embedding import current_model_name

    _check_bench_database()
    call_command("migrate", verbosity=0)
    rng = np.random.default_rng(SEED)
    now = datetime.now(UTC)
    model = current_model_name()
    tree = category_tree()
    vectors, leaves, brands = item_vectors(n_items, rng)
    prices = np.round(np.exp(rng.normal(3.5, 1.0, size=n_items)), 2)
    published = rng.uniform(0, 730, size=n_items)
    in_stock = rng.random(n_items) > 0.05

    connection.ensure_connection()
    conn = connection.connection
    register_vector(conn)
    with conn.cursor() as cur:
        cur.execute(
            "TRUNCATE recommendations_servedlist, recommendations_itempopularity, interactions_event, "
            "interactions_userprofile, catalog_promotion, catalog_item, catalog_category CASCADE"
        )
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
    from psycopg.types.json import Jsonb

    started = time.monotonic()
    with conn.cursor() as cur:
        for start in tqdm(range(0, n_items, COPY_BATCH), desc="items", unit="batch"):
            with cur.copy(f"COPY catalog_item ({columns}) FROM STDIN WITH (FORMAT BINARY)") as copy:
                copy.set_types(types)
                for i in range(start, min(start + COPY_BATCH, n_items)):
                    path = list(tree[leaves[i]])
                    created = now - timedelta(days=float(published[i]))
                    copy.write_row(
                        [
                            f"item-{i}", f"{path[-1]} product {i} by Brand {brands[i]}", "", path, Decimal(str(prices[i])), "EUR",
                            f"Brand {brands[i]}", "", "new", f"https://img.example/{i}.jpg", Jsonb({}),
                            bool(in_stock[i]), created, True, "", vectors[i], "", model, now, False, created, now,
                        ]
                    )  # fmt: skip
        conn.commit()
    print(f"items: {n_items} in {time.monotonic() - started:.1f} s", flush=True)

    started = time.monotonic()
    with conn.cursor() as cur:
        cur.execute("SET maintenance_work_mem = '1GB'")
        cur.execute(
            "CREATE INDEX item_embedding_hnsw ON catalog_item USING hnsw (embedding vector_cosine_ops) "
            "WITH (m = 32, ef_construction = 128)"
        )
        cur.execute("ANALYZE catalog_item")
    conn.commit()
    print(f"HNSW index: {time.monotonic() - started:.1f} s", flush=True)

    with conn.cursor() as cur:
        cur.execute("SELECT min(id) FROM catalog_item")
        first_pk = cur.fetchone()[0]
    by_leaf: dict[int, np.ndarray] = {}
    for leaf_index in range(len(tree)):
        by_leaf[leaf_index] = np.flatnonzero(leaves == leaf_index)
    popular_leaves = np.argsort([-len(by_leaf[i]) for i in range(len(tree))])

    started = time.monotonic()
    types_event = ["text", "text", "text", "bigint", "text", "text", "timestamptz", "timestamptz", "text",
                   "text", "timestamptz", "bool"]  # fmt: skip
    kinds = np.array(["view", "click", "add_to_cart", "purchase"])
    kind_p = [0.7, 0.18, 0.07, 0.05]
    profiles = []
    with conn.cursor() as cur:
        with cur.copy(
            "COPY interactions_event (event_id, user_id, session_id, item_id, item_external_id, event_type, "
            "timestamp, received_at, device_type, surface, updated_at, vector_applied) FROM STDIN WITH (FORMAT BINARY)"
        ) as copy:
            copy.set_types(types_event)
            for u in tqdm(range(n_users), desc="users", unit="user"):
                favourite = rng.choice(popular_leaves[:60], size=rng.integers(1, 4), replace=False)
                pool = np.concatenate([by_leaf[f] for f in favourite])
                picked = rng.choice(pool, size=min(EVENTS_PER_USER, len(pool)), replace=True)
                when = np.sort(rng.uniform(0, 30, size=len(picked)))[::-1]
                event_kinds = rng.choice(kinds, size=len(picked), p=kind_p)
                for j, (item, days, kind) in enumerate(zip(picked, when, event_kinds, strict=True)):
                    ts = now - timedelta(days=float(days))
                    copy.write_row(
                        [f"ev-{u}-{j}", f"user-{u}", f"sess-{u}", first_pk + int(item), f"item-{item}", str(kind),
                         ts, now, "web", "", now, True]
                    )  # fmt: skip
                profiles.append((f"user-{u}", _unit(vectors[picked].mean(axis=0)), len(picked),
                                 int((event_kinds == "purchase").sum())))  # fmt: skip
        with cur.copy(
            "COPY interactions_userprofile (external_id, embedding, event_count, purchase_count, last_event_at, "
            "created_at, updated_at, embedding_model, weight_sum) FROM STDIN WITH (FORMAT BINARY)"
        ) as copy:
            copy.set_types(["text", "vector", "int4", "int4", "timestamptz", "timestamptz", "timestamptz", "text",
                            "float8"])  # fmt: skip
            for external_id, vector, count, bought in profiles:
                copy.write_row([external_id, vector, count, bought, now, now, now, model, float(count)])
        cur.execute("ANALYZE interactions_event")
        cur.execute("ANALYZE interactions_userprofile")
    conn.commit()
    print(f"users and events: {n_users} users, {n_users * EVENTS_PER_USER} events in "
          f"{time.monotonic() - started:.1f} s", flush=True)  # fmt: skip

    from recommendations.services import item_popularity_refresh

    started = time.monotonic()
    print(f"popularity: {item_popularity_refresh()} items in {time.monotonic() - started:.1f} s", flush=True)


def is_loaded(n_items: int, n_users: int) -> bool:
    from bench.harness import django_setup

    django_setup()
    from django.core.management import call_command
    from django.db import connection

    _check_bench_database()
    call_command("migrate", verbosity=0)
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM catalog_item")
        items = cur.fetchone()[0]
        cur.execute("SELECT count(*) FROM interactions_userprofile")
        users = cur.fetchone()[0]
        cur.execute("SELECT 1 FROM pg_indexes WHERE indexname = 'item_embedding_hnsw'")
        indexed = cur.fetchone() is not None
    return items == n_items and users == n_users and indexed


def ensure(*, n_items: int = 100_000, n_users: int = 10_000, force: bool = False) -> None:
    setup_env()
    if force or not is_loaded(n_items, n_users):
        load(n_items=n_items, n_users=n_users)
    else:
        print(f"{BENCH_DB}: {n_items} items and {n_users} users already loaded", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--force", action="store_true", help="reload even if the data is there")
    args = parser.parse_args()
    ensure(n_items=args.items, n_users=args.users, force=args.force)

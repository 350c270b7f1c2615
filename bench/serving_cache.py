"""The pre-computed candidates (docs/serving-cache.md): what a list costs the worker, what the table costs
in memory, and the `users` latency on a cache hit and a miss beside a floor, in the same run, through
gunicorn.

    RECSYS_BENCH_REDIS_DB=12 .venv/bin/python -m bench.serving_cache [--items 100000] [--users 10000] \
        [--lists 2000] [--requests 300] [--seconds 10] [--workers 3]

1. The bench database (bench/serving_data.py): `--items` items, `--users` users with ~20 events each.
   With `--ranker-users N`, a ranker trained on N users' events is active (the hybrid path: the candidate
   sources, ordered by the ranker); without, the single-retrieval path serves.
2. Lists for the first `--lists` users, computed in this process by the worker's own code
   (candidate_cache.candidate_lists_refresh): CPU-seconds of this process and of its Postgres backend (read
   from /proc) per list. The worker recomputes one list per user per user-vector task, so 1,000 events
   cost at most 1,000 lists (fewer when a task carries several events of one user).
3. The table's size (heap, TOAST, indexes) per list, scaled to 10,000 users.
4. gunicorn (`--workers` sync workers) serving: `floor` (a minimal DRF endpoint with the same Api-Key
   authentication and throttles, 10 small items from memory), `vector` (the raw vector query: one HNSW
   search of 10 through the same stack, bench/cache_floor_urls.py), `users` for users with a list (hits)
   and for users without one (misses: the live path), then `similar`, `session`, `bought-together` and
   `search` (`--endpoints` picks the rows; the two references always run), at concurrency 1 and 8. Each
   answer's X-Recsys-Cache header is counted, so a hit is a hit. Ratios are to the floor and to the vector
   query of the same run, with the load average when each row started.
5. With an item row (`similar (cache hit)`, `similar (cache miss)`, `session (cache hit)`): the similar and
   session lists of the first `--item-lists` items (recommendations/item_cache.py), their CPU and memory,
   and the staleness `--new-items` new items leave after the nearby refresh (item_lists_measure). A hit
   asks for a listed item (a one-item session for `session (cache hit)`), a miss for an item after them.

The machine is shared (2 cores): compare the rows of one run, not runs.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import threading
import time
from collections import Counter

from bench.harness import load_average, load_line, percentile, start_gunicorn
from bench.serving_latency import QUERIES

# The rows measured, in order: the two references, then the endpoints (`--endpoints` picks among them).
ENDPOINTS = (
    "floor",
    "vector",
    "users (cache hit)",
    "users (cache miss)",
    "similar",
    "similar (cache hit)",
    "similar (cache miss)",
    "session",
    "session (cache hit)",
    "bought-together",
    "search",
)
# served from the items' pre-computed lists (item_cache): the first `--item-lists` items; a miss is an item
# after them (served live, and queued: no worker runs, so it stays a miss)
ITEM_HITS = {"similar (cache hit)", "session (cache hit)"}


class Client:
    def __init__(
        self, port: int, key: str, users: range, seed: int, n_items: int, items: range | None = None
    ):
        self.port, self.key, self.users, self.n_items = port, key, users, n_items
        self.items = items if items is not None else range(n_items)
        self.rng = random.Random(seed)
        self.cache: Counter[str] = Counter()

    def request(self, endpoint: str) -> tuple[float, int]:
        rng, method, body = self.rng, "GET", None
        item = f"item-{rng.choice(self.items)}"
        if endpoint == "floor":
            path = "/bench/floor"
        elif endpoint == "vector":
            path = "/bench/vector"
        elif endpoint.startswith("similar"):
            path = f"/api/v1/recommendations/items/{item}/similar"
        elif endpoint == "session (cache hit)":
            method, path = "POST", "/api/v1/recommendations/session"
            body = json.dumps({"item_ids": [item]})
        elif endpoint == "bought-together":
            path = f"/api/v1/recommendations/items/{item}/bought-together"
        elif endpoint == "session":
            method, path = "POST", "/api/v1/recommendations/session"
            body = json.dumps({"item_ids": [f"item-{rng.randrange(self.n_items)}" for _ in range(3)]})
        elif endpoint == "search":
            path = "/api/v1/search?q=" + QUERIES[rng.randrange(len(QUERIES))].replace(" ", "+")
        else:
            path = f"/api/v1/recommendations/users/user-{rng.choice(self.users)}"
        headers = {"Authorization": f"Api-Key {self.key}", "Content-Type": "application/json"}
        started = time.perf_counter()
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            status = response.status
            self.cache[(response.getheader("X-Recsys-Cache") or "-").split(":")[0]] += 1
        finally:
            conn.close()
        return (time.perf_counter() - started) * 1000.0, status


def run(clients: list[Client], endpoint: str, *, n: int, seconds: float) -> tuple[list[float], int, float]:
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def loop(client: Client, count: int | None) -> None:
        done = 0
        while (count is not None and done < count) or (count is None and time.perf_counter() < deadline):
            ms, status = client.request(endpoint)
            done += 1
            with lock:
                latencies.append(ms)
                errors[0] += status != 200

    single = len(clients) == 1
    threads = [threading.Thread(target=loop, args=(c, n if single else None)) for c in clients]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, errors[0], time.perf_counter() - started


def ranker_use(users: int) -> None:
    """Activate a ranker trained on `users` users' events (leave-one-out rows, no gate), or none."""
    from recommendations.models import ModelVersion
    from recommendations.ranker.serving import active_ranker_clear
    from training.ranker.registry import ranker_activate

    ModelVersion.objects.filter(kind=ModelVersion.Kind.RANKER, is_active=True).update(is_active=False)
    active_ranker_clear()
    if not users:
        return
    import numpy as np

    from recommendations.ranker.model import ranker_save, ranker_train
    from training import evaluation
    from training.ranker.training import DEFAULT_SOURCES, training_rows_build

    started = time.perf_counter()
    data = evaluation.events_load()
    vectors = evaluation.item_vectors_load(data)
    rows = training_rows_build(
        data, np.arange(len(data.ts)), vectors, protocol="leave-one-out", max_users=users
    )
    ranker = ranker_train(rows.features, rows.labels, rows.groups, sources=DEFAULT_SOURCES)
    version = ModelVersion.objects.create(kind=ModelVersion.Kind.RANKER, events=len(data.ts))
    version.artifact_path = str(ranker_save(ranker, name=f"bench-v{version.pk}"))
    ranker_activate(version=version, reason="bench/serving_cache.py")
    print(
        f"ranker v{version.pk}: trained on {users} users in {time.perf_counter() - started:.0f} s", flush=True
    )


DENSE_SEEDS = 5


def item_lists_measure(*, n: int, new_items: int, dense: bool = False, noise: float = 0.5) -> None:
    """The item lists (recommendations/item_cache.py) of the first `n` items, both scenarios: CPU per 1,000
    items (this process and its Postgres backend), the table's size per 10,000 items, then the staleness a
    new item leaves: `new_items` items are added next to listed items (their vector plus `noise` times a
    random unit vector, 0.5 for a cosine of ~0.9; with `dense`, next to 5 seeds whose `n / 5` nearest items
    all have a list), the nearby refresh runs (item_cache.item_lists_nearby, what the item_vectors_changed
    task does), and every stored `similar` list is compared with a fresh computation: a list a new item
    would enter and still does not have is stale until the sweep's refresh age. The new items are deleted
    after."""
    import numpy as np
    from django.db import connection
    from django.utils import timezone

    from catalog.models import Item
    from core.processes import cpu_seconds
    from recommendations.item_cache import item_lists_nearby, item_lists_refresh
    from recommendations.models import ItemCandidateList, Scenario
    from recommendations.scenarios import item_candidates_compute
    from recommendations.selectors import item_vectors

    with connection.cursor() as cur:
        cur.execute("TRUNCATE recommendations_itemcandidatelist")
        cur.execute("SELECT pg_backend_pid()")
        backend = cur.fetchone()[0]
    pks = dict(
        Item.objects.filter(external_id__in=[f"item-{i}" for i in range(n)]).values_list("external_id", "pk")
    )
    listed = [pks[f"item-{i}"] for i in range(n) if f"item-{i}" in pks]
    item_lists_refresh(item_pks=listed[:20])  # warm
    print(f"{load_line()}; computing the similar and session lists of {len(listed)} items ...", flush=True)
    app0, db0, wall0 = time.process_time(), cpu_seconds([backend]), time.perf_counter()
    done = item_lists_refresh(item_pks=listed)
    app, db, wall = time.process_time() - app0, cpu_seconds([backend]) - db0, time.perf_counter() - wall0
    with connection.cursor() as cur:
        cur.execute(
            "SELECT count(*), pg_total_relation_size('recommendations_itemcandidatelist'), "
            "avg(cardinality(item_pks)) FROM recommendations_itemcandidatelist"
        )
        rows, size, avg_len = cur.fetchone()
    per_item = (app + db) / len(listed)
    print(
        f"item lists: {done} lists ({len(listed)} items x 2 scenarios) in {wall:.1f} s wall; CPU per item "
        f"{app / len(listed) * 1000:.1f} ms (app) + {db / len(listed) * 1000:.1f} ms (Postgres) -> "
        f"{per_item * 1000:.1f} CPU-seconds per 1,000 items, {per_item * 100_000 / 60:.1f} CPU-minutes for "
        f"100,000 items",
        flush=True,
    )
    print(
        f"item table: {rows} lists, {float(avg_len):.0f} candidates each, {size / 1e6:.1f} MB -> "
        f"{size / rows / 1e3:.2f} KB per list, {size / len(listed) * 10_000 / 1e6:.1f} MB per 10,000 items "
        f"(both scenarios)",
        flush=True,
    )
    if not new_items:
        return
    rng = np.random.default_rng(7)
    if dense:
        # the lists a new item may enter are its neighbours' lists: list whole neighbourhoods (each seed's
        # `n / seeds` nearest items), then add the new items next to the seeds
        from recommendations.retrieval import get_backend
        from recommendations.retrieval.base import HardFilters

        seeds = [int(pk) for pk in rng.choice(listed, size=DENSE_SEEDS, replace=False)]
        seed_vectors = item_vectors(item_pks=seeds)
        hood: dict[int, None] = dict.fromkeys(seeds)
        for pk in seeds:
            for c in get_backend().search(vector=seed_vectors[pk], k=n // DENSE_SEEDS, filters=HardFilters()):
                hood[c.item_pk] = None
        with connection.cursor() as cur:
            cur.execute("TRUNCATE recommendations_itemcandidatelist")
        listed = list(hood)
        item_lists_refresh(item_pks=listed, scenarios=[Scenario.SIMILAR])
        anchors = [seeds[i % len(seeds)] for i in range(new_items)]
        print(f"dense: the similar lists of {len(listed)} items around {len(seeds)} seeds", flush=True)
    else:
        anchors = [int(pk) for pk in rng.choice(listed, size=new_items, replace=False)]
    vectors = item_vectors(item_pks=anchors)
    now = timezone.now()
    created = []
    for i, pk in enumerate(anchors):
        item = Item.objects.get(pk=pk)
        jitter = rng.normal(size=vectors[pk].shape).astype(np.float32)
        v = vectors[pk] / np.linalg.norm(vectors[pk]) + noise * jitter / np.linalg.norm(jitter)
        item.pk = item.id = None
        item.external_id, item.embedding, item.embedded_at = f"bench-new-{i}", v / np.linalg.norm(v), now
        created.append(item)
    new_pks = [it.pk for it in Item.objects.bulk_create(created)]
    try:
        before = timezone.now()
        app0, db0 = time.process_time(), cpu_seconds([backend])
        due = item_lists_nearby(item_pks=new_pks, before=before)
        recomputed = item_lists_refresh(item_pks=due)
        app, db = time.process_time() - app0, cpu_seconds([backend]) - db0
        new = set(new_pks)
        stale = entered = 0
        stored = dict(
            ItemCandidateList.objects.filter(scenario=Scenario.SIMILAR).values_list("item_id", "item_pks")
        )
        for pk, pks_stored in stored.items():
            fresh = item_candidates_compute(item_pk=pk, scenario=Scenario.SIMILAR)
            if fresh is None:
                continue
            joined = new & set(fresh.item_pks)
            entered += bool(joined)
            stale += bool(joined - set(pks_stored))
        print(
            f"new items: {len(new_pks)} added next to listed items; the nearby refresh recomputed {len(due)} "
            f"items' lists ({recomputed} lists) in {app + db:.1f} CPU-s ({(app + db) / len(new_pks) * 1000:.0f} "
            f"ms per new item); {entered} of {len(stored)} similar lists now hold a new item, {stale} of them "
            f"still without it (stale until the refresh age)",
            flush=True,
        )
    finally:
        Item.objects.filter(pk__in=new_pks).delete()
        if not dense:
            item_lists_refresh(item_pks=listed)  # the lists as they were, for the latency rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--lists", type=int, default=2000, help="users whose list is computed (the hits)")
    parser.add_argument("--requests", type=int, default=300, help="requests per row at concurrency 1")
    parser.add_argument("--seconds", type=float, default=10.0, help="duration per row at concurrency 8")
    parser.add_argument("--workers", type=int, default=3, help="gunicorn sync workers")
    parser.add_argument(
        "--ranker-users",
        type=int,
        default=0,
        help="train a ranker on this many users' events and activate it (the hybrid path); 0: none, the "
        "single-retrieval path",
    )
    parser.add_argument(
        "--item-lists", type=int, default=1000, help="items whose similar and session lists are computed"
    )
    parser.add_argument(
        "--new-items", type=int, default=50, help="new items near listed ones, for the staleness bound"
    )
    parser.add_argument(
        "--new-noise",
        type=float,
        default=0.5,
        help="how far a new item is from its listed item (0.5: cosine ~0.9)",
    )
    parser.add_argument(
        "--staleness-only",
        action="store_true",
        help="only the item lists' cost and staleness, with whole neighbourhoods listed (no latency rows)",
    )
    parser.add_argument(
        "--endpoints", default=",".join(ENDPOINTS), help="rows to measure, of: " + ", ".join(ENDPOINTS)
    )
    args = parser.parse_args()
    endpoints = [e.strip() for e in args.endpoints.split(",") if e.strip()]
    unknown = set(endpoints) - set(ENDPOINTS)
    assert not unknown, f"unknown endpoints {unknown}"
    endpoints = [e for e in ENDPOINTS if e in {"floor", "vector", *endpoints}]  # the references always
    assert args.lists < args.users, "some users must be left without a list (the misses)"

    from bench import serving_data

    serving_data.ensure(n_items=args.items, n_users=args.users)
    from django.db import connection

    from core.models import ApiKey
    from core.processes import cpu_seconds
    from recommendations.candidate_cache import candidate_lists_refresh

    ranker_use(args.ranker_users)
    if args.staleness_only:
        item_lists_measure(n=args.item_lists, new_items=args.new_items, dense=True, noise=args.new_noise)
        return
    with connection.cursor() as cur:  # not DELETE: its dead rows would count in the size below
        cur.execute("TRUNCATE recommendations_candidatelist")
    users = [f"user-{i}" for i in range(args.lists)]
    print(f"{load_line()}; computing {len(users)} lists ...", flush=True)
    candidate_lists_refresh(user_ids=users[:20])  # warm: the model version lookups, the first queries
    with connection.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        backend = cur.fetchone()[0]
    app0, db0, wall0 = time.process_time(), cpu_seconds([backend]), time.perf_counter()
    done = candidate_lists_refresh(user_ids=users)
    app, db, wall = time.process_time() - app0, cpu_seconds([backend]) - db0, time.perf_counter() - wall0
    with connection.cursor() as cur:
        cur.execute(
            "SELECT count(*), pg_total_relation_size('recommendations_candidatelist'), "
            "avg(cardinality(item_pks)) FROM recommendations_candidatelist"
        )
        rows, size, avg_len = cur.fetchone()
    print(
        f"lists: {done} computed in {wall:.1f} s wall; CPU per list {app / done * 1000:.1f} ms (app) + "
        f"{db / done * 1000:.1f} ms (Postgres backend) -> {(app + db) / done * 1000:.1f} CPU-seconds per "
        f"1,000 events at most (one list per event)",
        flush=True,
    )
    print(
        f"table: {rows} lists, {float(avg_len):.0f} candidates each, {size / 1e6:.1f} MB -> "
        f"{size / rows * 10_000 / 1e6:.1f} MB per 10,000 users",
        flush=True,
    )

    if any(e.startswith(("similar (", "session (")) for e in endpoints):
        item_lists_measure(n=args.item_lists, new_items=args.new_items)

    _key, raw = ApiKey.generate(name=f"bench cache {os.getpid()}")
    connection.close()
    env = dict(os.environ, DEBUG="0", DJANGO_SETTINGS_MODULE="bench.cache_floor_settings")
    gunicorn, port = start_gunicorn(
        "bench_serving_cache_gunicorn", workers=args.workers, env=env, listen_timeout=60
    )
    try:
        hits, misses = range(0, args.lists), range(args.lists, args.users)
        plan = [(e, misses if e == "users (cache miss)" else hits) for e in endpoints]
        item_ranges = {
            **{e: range(0, args.item_lists) for e in ITEM_HITS},
            "similar (cache miss)": range(args.item_lists, args.items),
        }
        warm = Client(port, raw, hits, 1, args.items)
        for endpoint, _ in plan:
            # the misses are warmed on other items than they are measured on (a miss queues its item)
            warm.items = item_ranges.get(endpoint, range(args.items))
            if endpoint == "similar (cache miss)":
                warm.items = range(args.items - 1000, args.items)
            for _ in range(10 * args.workers):
                warm.request(endpoint)
        print(f"gunicorn: {args.workers} sync workers; {load_line()}", flush=True)
        rows_out = []
        for endpoint, pool in plan:
            for concurrency in (1, 8):
                clients = [
                    Client(port, raw, pool, 100 * concurrency + i, args.items, item_ranges.get(endpoint))
                    for i in range(concurrency)
                ]
                load = load_average()
                lat, errors, wall = run(clients, endpoint, n=args.requests, seconds=args.seconds)
                cache = sum((c.cache for c in clients), Counter())
                row = (endpoint, concurrency, len(lat), percentile(lat, 50), percentile(lat, 95),
                       percentile(lat, 99), len(lat) / wall, errors, dict(cache), load)  # fmt: skip
                rows_out.append(row)
                print(
                    f"{endpoint:20s} c={concurrency} n={len(lat):5d} p50={row[3]:6.1f} p95={row[4]:6.1f} "
                    f"p99={row[5]:6.1f} ms {row[6]:6.1f} req/s errors={errors} cache={dict(cache)} "
                    f"load {load:.1f}",
                    flush=True,
                )
        floor = {r[1]: r for r in rows_out if r[0] == "floor"}
        vector = {r[1]: r for r in rows_out if r[0] == "vector"}
        print(f"\n{load_line('at the end')}")
        print(
            "| endpoint | c | requests | p50 ms | p95 ms | p99 ms | req/s | p50 / floor | req/s / floor | "
            "p50 / vector | req/s / vector | load |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for r in rows_out:
            f, v = floor[r[1]], vector[r[1]]
            print(
                f"| {r[0]} | {r[1]} | {r[2]} | {r[3]:.1f} | {r[4]:.1f} | {r[5]:.1f} | {r[6]:.0f} | "
                f"{r[3] / f[3]:.1f}x | {r[6] / f[6]:.2f} | {r[3] / v[3]:.1f}x | {r[6] / v[6]:.2f} | {r[9]:.1f} |"
            )
    finally:
        gunicorn.stop()


if __name__ == "__main__":
    main()

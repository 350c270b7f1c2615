"""Freshness with a real worker: from `POST /api/v1/items` until the item comes back from a nearest-neighbour
query on its own vector, from `POST /api/v1/events` until the user's vector includes the event, from
`POST /api/v1/events` (an add_to_cart after one of another item) until `GET .../bought-together` of the
first item answers with the second one first, and (`users`) from a purchase of the first item of a user's
answer served from their pre-computed candidates until `GET .../users/{id}` no longer shows it, and until
it is served from the recomputed list again (X-Recsys-Cache: hit).

    .venv/bin/python -m bench.freshness [--trials 20] [--catalog 1000] [--only bought-together]

Runs against its own database (`bench_embed` on the embedded PostgreSQL) and its own Redis DB
(RECSYS_BENCH_REDIS_DB, default 13, flushed at start), with its own worker process (2 prefork children on
the default, embeddings and maintenance queues), which it stops at the end. Requests go through the whole
Django stack in this process (DRF test client: auth, throttling, validation, the commit, the publish).
Times are measured from just before the request is sent. The machine is shared: figures are noisy.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from urllib.parse import quote

from bench.harness import create_database, database_url, load_line, percentile, redis_url

BENCH_DB = "bench_embed"
REDIS_DB = os.environ.get("RECSYS_BENCH_REDIS_DB", "13")


def setup_env() -> str:
    """Point this process (and the worker it starts) at the bench database and Redis DB. Must run before
    anything imports recsys_project: importing it loads the settings, which read the environment once."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    os.environ["DJANGO_SETTINGS_MODULE"] = "recsys_project.settings"
    os.environ["ALLOWED_HOSTS"] = "testserver,localhost"
    os.environ["RECSYS_HTTPS"] = "0"
    os.environ["RECSYS_API_RATE"] = "100000/min"
    os.environ["LOG_LEVEL"] = "WARNING"
    os.environ["REDIS_URL"] = redis_url(REDIS_DB)
    os.environ["DATABASE_URL"] = database_url(BENCH_DB)
    return create_database(BENCH_DB)


def start_worker(log_path: Path):
    from core.processes import start_celery_worker
    from recsys_project.celery import QUEUES

    process = start_celery_worker(
        queues=QUEUES, concurrency=2, hostname=f"benchfresh-{os.getpid()}@%h", env=dict(os.environ),
        log=log_path, extra=["--without-gossip", "--without-mingle"],
    )  # fmt: skip
    deadline = time.monotonic() + 90
    # Ready means both children have loaded the model (worker_process_init) and the consumer is up.
    while time.monotonic() < deadline:
        text = log_path.read_text()
        # Both children load the model in worker_process_init, after the parent says "ready.": wait for
        # them, or the first trial measures a cold start (~20 s on the loaded box) instead of freshness.
        if "ready." in text and text.count("Loading weights: 100%") >= 2:
            time.sleep(1)
            return process
        if process.poll() is not None:
            raise SystemExit("worker died:\n" + text[-3000:])
        time.sleep(0.2)
    process.stop(grace=30)
    raise SystemExit("worker did not start:\n" + log_path.read_text()[-3000:])


def summary(name: str, seconds: list[float], target: float) -> str:
    median, worst = percentile(seconds, 50), max(seconds)
    verdict = "meets" if worst <= target else "misses"
    return (
        f"{name:<34} median {median:6.3f} s   worst {worst:6.3f} s   best {min(seconds):6.3f} s   "
        f"({len(seconds)} trials; {verdict} the {target:g} s target at the worst)"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--catalog", type=int, default=1000, help="items embedded before the trials")
    parser.add_argument("--poll", type=float, default=0.01, help="seconds between checks")
    parser.add_argument(
        "--only", choices=["all", "items", "events", "bought-together", "users"], default="all"
    )
    args = parser.parse_args()
    setup_env()
    from bench.harness import django_setup

    django_setup()
    import redis
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from rest_framework.test import APIClient

    from catalog.item_vectors import items_embed
    from catalog.services import item_upsert
    from core.models import ApiKey
    from demo.shop import DemoShop

    print(f"database {BENCH_DB}, redis {settings.REDIS_URL}")
    assert settings.REDIS_URL.endswith(f"/{REDIS_DB}"), "settings were loaded before setup_env()"
    call_command("migrate", verbosity=0)
    with connection.cursor() as cur:
        cur.execute(
            "TRUNCATE interactions_event, interactions_userprofile, catalog_item, catalog_category CASCADE"
        )
    redis.Redis.from_url(settings.REDIS_URL).flushdb()
    shop = DemoShop(items=args.catalog + args.trials, users=0, seed=7)
    items = shop.items_build()
    seed, fresh = items[: args.catalog], items[args.catalog :]
    print(f"seeding {len(seed)} demo items and embedding them in this process ...", flush=True)
    # The bench process does not publish: no worker runs yet, and the sweep-like loop below embeds.
    from core.payloads import check_item

    for start in range(0, len(seed), 500):
        item_upsert(items=[check_item(raw)[0] for raw in seed[start : start + 500]])
    while args.only in ("all", "items", "users") and items_embed(limit=256).claimed:
        pass  # bought together needs no vectors
    _key, raw_key = ApiKey.generate(name="freshness bench")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw_key}")

    log_path = Path("/tmp") / f"recsys-bench-freshness-worker-{os.getpid()}.log"
    print(f"starting a worker (log: {log_path}) ...", flush=True)
    worker = start_worker(log_path)
    item_times, event_times, post_times, together_times = [], [], [], []
    answer_times: list[float] = []
    hit_times: list[float] = []
    try:
        nn_sql = """
            SELECT external_id FROM catalog_item
            WHERE embedding IS NOT NULL AND embedding_model = %s AND is_active
            ORDER BY embedding <=> (SELECT embedding FROM catalog_item WHERE external_id = %s) LIMIT 1
        """
        model_name = settings.RECSYS_EMBEDDING_MODEL
        for n, raw in enumerate(fresh if args.only in ("all", "items") else []):
            started = time.perf_counter()
            response = client.post("/api/v1/items", {"items": [raw]}, format="json")
            post_times.append(time.perf_counter() - started)
            assert response.status_code == 200 and response.json()["created"] == 1, response.content
            while True:
                with connection.cursor() as cur:
                    cur.execute(nn_sql, [model_name, raw["id"]])
                    row = cur.fetchone()
                if row and row[0] == raw["id"]:
                    break
                if time.perf_counter() - started > 60:
                    raise SystemExit(f"item {raw['id']} not retrievable after 60 s; see {log_path}")
                time.sleep(args.poll)
            item_times.append(time.perf_counter() - started)
            print(f"item trial {n + 1}: {item_times[-1]:.3f} s", flush=True)
            time.sleep(0.3)

        known = [raw["id"] for raw in seed[:50]]
        for n in range(args.trials if args.only in ("all", "events") else 0):
            event_id = f"bench-{os.getpid()}-{n}"
            event = {
                "event_id": event_id,
                "user_id": f"bench-user-{n % 5}",
                "item_id": known[n],
                "event_type": "add_to_cart",
                "timestamp": "2026-03-02T12:00:00Z",
            }
            started = time.perf_counter()
            response = client.post("/api/v1/events", {"events": [event]}, format="json")
            assert response.status_code == 200 and response.json()["accepted"] == 1, response.content
            while True:
                with connection.cursor() as cur:
                    # applied together with the profile's new vector, in one transaction
                    cur.execute(
                        "SELECT vector_applied FROM interactions_event WHERE event_id = %s", [event_id]
                    )
                    if cur.fetchone()[0]:
                        break
                if time.perf_counter() - started > 60:
                    raise SystemExit(f"event {event_id} not applied after 60 s; see {log_path}")
                time.sleep(args.poll)
            event_times.append(time.perf_counter() - started)
            print(f"event trial {n + 1}: {event_times[-1]:.3f} s", flush=True)
            time.sleep(0.3)

        # Bought together: a shopper puts `anchor` in the cart (not timed, folded by the worker), then
        # `partner`; timed from that POST until the anchor's answer has the partner first. Each trial uses
        # items no one bought before, so the partner is the anchor's only co-visited item.
        for n in range(args.trials if args.only in ("all", "bought-together") else 0):
            anchor, partner = seed[100 + 2 * n]["id"], seed[101 + 2 * n]["id"]
            base = {"user_id": f"bt-user-{os.getpid()}-{n}", "event_type": "add_to_cart"}
            first = {**base, "event_id": f"bt-{os.getpid()}-{n}-a", "item_id": anchor}
            first["timestamp"] = "2026-03-02T12:00:00Z"
            assert client.post("/api/v1/events", {"events": [first]}, format="json").status_code == 200
            time.sleep(0.5)
            url = f"/api/v1/recommendations/items/{quote(anchor)}/bought-together?limit=1"
            second = {**base, "event_id": f"bt-{os.getpid()}-{n}-b", "item_id": partner}
            second["timestamp"] = "2026-03-02T12:01:00Z"
            started = time.perf_counter()
            response = client.post("/api/v1/events", {"events": [second]}, format="json")
            assert response.status_code == 200 and response.json()["accepted"] == 1, response.content
            while True:
                items = client.get(url).json()["items"]
                if items and items[0]["id"] == partner and items[0]["reason"]["type"] == "bought_together":
                    break
                if time.perf_counter() - started > 60:
                    raise SystemExit(f"bought together of {anchor} unchanged after 60 s; see {log_path}")
                time.sleep(args.poll)
            together_times.append(time.perf_counter() - started)
            print(f"bought-together trial {n + 1}: {together_times[-1]:.3f} s", flush=True)
            time.sleep(0.3)

        # Users: a shopper views three items (not timed) and is served from their pre-computed list; then
        # buys the first item of that answer. Timed from the purchase POST until the answer no longer shows
        # it (the live path answers at once: the list is older than the event) and until it is served from
        # the list again (the worker applied the event to the vector and recomputed the list).
        for n in range(args.trials if args.only in ("all", "users") else 0):
            user = f"cache-user-{os.getpid()}-{n}"
            url = f"/api/v1/recommendations/users/{user}"
            views = [
                {"event_id": f"{user}-v{k}", "user_id": user, "item_id": seed[200 + 3 * n + k]["id"],
                 "event_type": "view", "timestamp": "2026-03-02T12:00:00Z"}
                for k in range(3)
            ]  # fmt: skip
            assert client.post("/api/v1/events", {"events": views}, format="json").status_code == 200
            deadline = time.perf_counter() + 60
            while (response := client.get(url))["X-Recsys-Cache"] != "hit":
                if time.perf_counter() > deadline:
                    raise SystemExit(f"no list for {user} after 60 s; see {log_path}")
                time.sleep(args.poll)
            bought = response.json()["items"][0]["id"]
            purchase = {"event_id": f"{user}-p", "user_id": user, "item_id": bought, "event_type": "purchase",
                        "timestamp": "2026-03-02T12:05:00Z"}  # fmt: skip
            started = time.perf_counter()
            response = client.post("/api/v1/events", {"events": [purchase]}, format="json")
            assert response.status_code == 200 and response.json()["accepted"] == 1, response.content
            changed = None
            while True:
                response = client.get(url)
                shown = [item["id"] for item in response.json()["items"]]
                if bought not in shown and changed is None:
                    changed = time.perf_counter() - started
                if bought not in shown and response["X-Recsys-Cache"] == "hit":
                    break
                if time.perf_counter() - started > 60:
                    raise SystemExit(f"list of {user} not recomputed after 60 s; see {log_path}")
                time.sleep(args.poll)
            answer_times.append(changed or 0.0)
            hit_times.append(time.perf_counter() - started)
            print(
                f"users trial {n + 1}: answer {answer_times[-1]:.3f} s, hit {hit_times[-1]:.3f} s", flush=True
            )
            time.sleep(0.3)
    finally:
        worker.stop(grace=30)
    print()
    print(
        f"catalog: {args.catalog} embedded demo items; worker: 2 prefork children, poll every {args.poll} s"
    )
    if item_times:
        print(f"POST /api/v1/items latency: median {percentile(post_times, 50):.3f} s")
        print(summary("item POST -> retrievable by NN", item_times, 2.0))
    if event_times:
        print(summary("event POST -> in the user vector", event_times, 1.0))
    if together_times:
        print(summary("event POST -> bought-together answer", together_times, 1.0))
    if answer_times:
        print(summary("purchase POST -> users answer without it", answer_times, 1.0))
        print(summary("purchase POST -> served from the list", hit_times, 1.0))
    print(load_line("at the end"))


if __name__ == "__main__":
    main()

"""API ingestion benchmark: events/s through POST /api/v1/events, batches of 500, on a real HTTP server.

    .venv/bin/python -m bench.ingest_api [--batches 200] [--concurrency 4] [--workers 2]

gunicorn (sync workers) on loopback serves the app with production settings (DEBUG off) against its own
database (recsys_bench_ingest, emptied first) and its own Redis DB. Clients send pre-serialised batches
over keep-alive connections; a batch counts when it answered 200, which means it is committed. The stored
row count is checked at the end. Clients, server and PostgreSQL share the same 2 cores.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import resource
import secrets
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

from bench.harness import Results, percentile, start_gunicorn
from bench.ingest_env import CpuSampler, bench_env, drop_queued_tasks, migrate_and_empty

EVENT_TYPES = (
    ["view"] * 60 + ["click"] * 20 + ["add_to_cart"] * 10 + ["add_to_favorites"] * 5 + ["purchase"] * 5
)
N_ITEMS = 5_000
N_USERS = 10_000


def make_batches(n_batches: int, size: int, *, tag: str) -> list[bytes]:
    rng = random.Random(42)
    start = datetime.now(UTC) - timedelta(days=30)
    bodies = []
    for b in range(n_batches):
        events = []
        for i in range(size):
            user = rng.randrange(N_USERS)
            event = {
                "event_id": f"{tag}-{b}-{i}",
                "user_id": f"user-{user}" if rng.random() > 0.2 else None,
                "session_id": f"sess-{user}-{rng.randrange(5)}",
                "item_id": f"sku-{rng.randrange(N_ITEMS)}",
                "event_type": rng.choice(EVENT_TYPES),
                "timestamp": (start + timedelta(seconds=rng.randrange(30 * 86400))).isoformat(),
                "device_type": rng.choice(["mobile", "desktop", "tablet"]),
            }
            if event["event_type"] == "purchase":
                event["value"] = f"{rng.uniform(2, 200):.2f}"
                event["quantity"] = rng.randrange(1, 4)
            events.append({k: v for k, v in event.items() if v is not None})
        bodies.append(json.dumps({"events": events}).encode())
    return bodies


def create_key_and_items(env) -> str:
    """An API key and N_ITEMS items, made in-process through the services (items first, so events link)."""
    os.environ.update(env)
    from bench.harness import django_setup

    django_setup()
    from catalog.services import item_upsert
    from core.models import ApiKey

    _key, raw = ApiKey.generate(name="bench")
    for start in range(0, N_ITEMS, 1000):
        item_upsert(
            items=[
                {"id": f"sku-{n}", "title": f"Bench item {n}", "price": "9.99"}
                for n in range(start, start + 1000)
            ]
        )
    return raw


def send_all(port: int, key: str, bodies: list[bytes], concurrency: int) -> tuple[float, list[float], dict]:
    from tqdm import tqdm

    todo = list(enumerate(bodies))
    lock = threading.Lock()
    latencies: list[float] = []
    totals = {"accepted": 0, "duplicates": 0, "rejected": 0, "errors": 0}
    bar = tqdm(total=len(bodies), unit="batch", leave=False)
    headers = {"Authorization": f"Api-Key {key}", "Content-Type": "application/json"}

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        while True:
            with lock:
                if not todo:
                    break
                _, body = todo.pop()
            t0 = time.perf_counter()
            conn.request("POST", "/api/v1/events", body=body, headers=headers)
            response = conn.getresponse()
            payload = response.read()
            elapsed = time.perf_counter() - t0
            with lock:
                latencies.append(elapsed)
                if response.status == 200:
                    answer = json.loads(payload)
                    totals["accepted"] += answer["accepted"]
                    totals["duplicates"] += answer["duplicates"]
                    totals["rejected"] += len(answer["rejected"])
                else:
                    totals["errors"] += 1
                    print(f"HTTP {response.status}: {payload[:200]!r}", file=sys.stderr)
                bar.update(1)
        conn.close()

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    bar.close()
    return wall, latencies, totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=200, help="batches of --size events to send")
    parser.add_argument("--size", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=4, help="client connections")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers")
    args = parser.parse_args()

    env = bench_env()
    env.update(
        DEBUG="0",
        RECSYS_HTTPS="0",  # plain http on loopback
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="127.0.0.1,localhost",
        RECSYS_API_RATE="1000000/min",  # measure ingestion, not the throttle
        LOG_LEVEL="WARNING",
    )
    migrate_and_empty(env)
    key = create_key_and_items(env)
    print(f"preparing {args.batches} batches of {args.size} events ...")
    bodies = make_batches(args.batches, args.size, tag="run")
    warmup = make_batches(4, args.size, tag="warm")

    server, port = start_gunicorn("bench_ingest_gunicorn", workers=args.workers, env=env)
    try:
        server.wait_http(
            f"http://127.0.0.1:{port}/healthz", timeout=60, accept=lambda status: status in (200, 503)
        )
        send_all(port, key, warmup, args.workers)  # connections, imports, statement caches
        results = Results(f"measure ({args.workers} gunicorn workers, {args.concurrency} client connections)")
        client_cpu = sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
        with CpuSampler(env, extra_pids=server.children) as server_cpu:
            wall, latencies, totals = send_all(port, key, bodies, args.concurrency)
        client_cpu = sum(resource.getrusage(resource.RUSAGE_SELF)[:2]) - client_cpu
        replay_wall, _, replay = send_all(port, key, bodies[: max(1, args.batches // 4)], args.concurrency)
    finally:
        server.stop(grace=30)

    from interactions.models import Event

    stored = Event.objects.filter(event_id__startswith="run-").count()
    sent = args.batches * args.size
    dropped = drop_queued_tasks(env)
    results.add(
        "events sent / accepted / stored (counted in the database)",
        f"{sent:,} / {totals['accepted']:,} / {stored:,}",
    )
    results.add("non-200 answers", totals["errors"])
    results.add("wall time", f"{wall:.1f} s")
    results.add("**events/s (new events, durable on 200)**", f"**{sent / wall:,.0f}**")
    p50, p95 = percentile(latencies, 50) * 1000, percentile(latencies, 95) * 1000
    results.add("batch latency p50 / p95 / max", f"{p50:.0f} / {p95:.0f} / {max(latencies) * 1000:.0f} ms")
    replayed = replay["duplicates"]
    results.add(f"replayed events/s (all duplicates, {replayed:,} events)", f"{replayed / replay_wall:,.0f}")
    cpu = server_cpu.seconds + client_cpu
    results.add(
        "CPU seconds: gunicorn workers + PostgreSQL backends, client",
        f"{server_cpu.seconds:.1f}, {client_cpu:.1f} s",
    )
    results.add(
        "events/s if those CPU seconds had the 2 cores to themselves (estimate)", f"{2 * sent / cpu:,.0f}"
    )
    results.print()
    print(f"(dropped {dropped} queued tasks from the bench Redis DB)")
    if stored != sent or totals["errors"]:
        sys.exit("some events were not stored")


if __name__ == "__main__":
    main()

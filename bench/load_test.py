"""Load test: a storefront's mix of reads and writes against gunicorn + a Celery worker, on loopback.

    .venv/bin/python -m bench.load_test [--minutes 10] [--clients 8] [--workers 3] [--items 100000]

Mix (by request): 80% recommendations (users 40%, similar 20%, session 10%, trending 10%), 15% event
batches (1-5 events, unique ids; every fifth one a click carrying a served recommendation_id) and 5%
item updates (PATCH price/stock, every fifth one a title change that queues a re-embedding).

Data: the serving bench's generator (bench/serving_data.py: 100,000 items with clustered synthetic
vectors, 10,000 users with history) loaded into the load test's OWN database, `recsys_bench_load` on the
embedded server, with Redis db 12, so the writes touch no other bench or the dev database.

Every loop is bounded in time (--minutes) and count (--max-requests per client); clients speak only to
127.0.0.1. Memory: the RSS of every gunicorn worker and Celery process is sampled every 10 s; the report
gives the first and last samples and the growth over the second half of the run (a leak keeps growing,
a warm-up does not). The machine is 2 shared cores: figures are noisy and include the clients' own CPU.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.harness import REPO, load_average, percentile, start_gunicorn

LOAD_DB = "recsys_bench_load"
LOAD_REDIS_DB = 12
RSS_SAMPLE_SECONDS = 10
RECS = [("users", 40), ("similar", 20), ("session", 10), ("trending", 10)]
WRITES = [("events", 15), ("item_update", 5)]


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class Client:
    """One storefront connection: picks an operation by weight and sends it. Bounded by the caller."""

    def __init__(self, port: int, key: str, n_items: int, n_users: int, seed: int, run: str):
        self.port, self.key, self.n_items, self.n_users = port, key, n_items, n_users
        self.rng = random.Random(seed)
        self.run, self.seed, self.counter = run, seed, 0
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.last_recommendation: str | None = None
        ops = RECS + WRITES
        self.ops = [name for name, _ in ops]
        self.weights = [weight for _, weight in ops]

    def one(self) -> tuple[str, float, int]:
        rng = self.rng
        op = rng.choices(self.ops, self.weights)[0]
        body: dict | None = None
        method = "GET"
        if op == "users":
            path = f"/api/v1/recommendations/users/user-{rng.randrange(self.n_users)}?limit=20"
        elif op == "similar":
            path = f"/api/v1/recommendations/items/item-{rng.randrange(self.n_items)}/similar"
        elif op == "session":
            method, path = "POST", "/api/v1/recommendations/session"
            body = {"item_ids": [f"item-{rng.randrange(self.n_items)}" for _ in range(3)]}
        elif op == "trending":
            path = "/api/v1/recommendations/trending"
        elif op == "events":
            method, path = "POST", "/api/v1/events"
            now = datetime.now(UTC).isoformat()
            user = rng.randrange(self.n_users)
            events = []
            for _ in range(rng.randint(1, 5)):
                self.counter += 1
                event = {
                    "event_id": f"{self.run}-{self.seed}-{self.counter}",
                    "user_id": f"user-{user}",
                    "session_id": f"load-{user}",
                    "item_id": f"item-{rng.randrange(self.n_items)}",
                    "event_type": rng.choice(["view", "view", "view", "click", "add_to_cart"]),
                    "timestamp": now,
                    "device_type": "mobile",
                }
                if self.last_recommendation and self.counter % 5 == 0:
                    event.update(event_type="click", recommendation_id=self.last_recommendation, position=1)
                events.append(event)
            body = {"events": events}
        else:
            method = "PATCH"
            item = rng.randrange(self.n_items)
            path = f"/api/v1/items/item-{item}"
            body = {"price": f"{rng.uniform(2, 300):.2f}", "stock": rng.randrange(0, 50)}
            if rng.random() < 0.2:
                body["title"] = f"Load test title {item} v{self.counter}"
        headers = {"Authorization": f"Api-Key {self.key}", "Content-Type": "application/json"}
        started = time.perf_counter()
        try:
            self.conn.request(
                method, path, body=json.dumps(body) if body is not None else None, headers=headers
            )
            response = self.conn.getresponse()
            payload = response.read()
            status = response.status
        except (OSError, http.client.HTTPException):
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            status, payload = 0, b""
        elapsed = (time.perf_counter() - started) * 1000
        if status == 200 and op in ("users", "similar", "session", "trending"):
            try:
                self.last_recommendation = json.loads(payload)["recommendation_id"]
            except (ValueError, KeyError):
                pass
        return op, elapsed, status


def start_processes(args, env: dict[str, str]):
    """gunicorn and one Celery worker on every queue; (gunicorn, worker, port)."""
    from core.processes import start_celery_worker
    from recsys_project.celery import QUEUES

    worker = start_celery_worker(
        queues=QUEUES, hostname=f"load-{os.getpid()}@%h", loglevel="WARNING", env=env,
        log=REPO / "var" / "bench_load_worker.log",
    )  # fmt: skip
    try:
        gunicorn, port = start_gunicorn("bench_load_gunicorn", workers=args.workers, env=env)
    except SystemExit:
        worker.stop()
        raise
    return gunicorn, worker, port


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=8, help="concurrent client connections")
    parser.add_argument("--workers", type=int, default=3, help="gunicorn sync workers")
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--max-requests", type=int, default=1_000_000, help="per client, a hard bound")
    args = parser.parse_args()

    from tqdm import tqdm

    from bench import serving_data

    # The serving bench's generator, pointed at this bench's own database and Redis db.
    serving_data.BENCH_DB = LOAD_DB
    serving_data.REDIS_DB = LOAD_REDIS_DB
    serving_data.ensure(n_items=args.items, n_users=args.users)
    from django.db import connection

    from core.models import ApiKey
    from core.processes import children
    from interactions.models import Event

    run = f"load{int(time.time())}"
    _key, raw = ApiKey.generate(name=f"load test {run}")
    events_before = Event.objects.count()
    connection.close()

    env = dict(os.environ, DEBUG="0", RECSYS_EMBEDDING_THREADS="1", RECSYS_API_RATE="1000000/min")
    gunicorn, worker, port = start_processes(args, env)
    stats: dict[str, list[float]] = {name: [] for name, _ in RECS + WRITES}
    errors: dict[str, int] = {name: 0 for name in stats}
    rss: list[tuple[float, float, float]] = []  # (t, web MB, worker MB)
    lock = threading.Lock()
    try:
        warm = Client(port, raw, args.items, args.users, seed=0, run=run + "w")
        for _ in range(20 * args.workers):
            op, _ms, status = warm.one()
            if status in (0, 401, 403) or status >= 500:
                raise SystemExit(f"warm-up {op} answered {status}; see var/bench_load_gunicorn.log")
        seconds = args.minutes * 60
        started = time.monotonic()
        deadline = started + seconds
        bar = tqdm(total=int(seconds), unit="s", desc="load")

        def loop(seed: int) -> None:
            client = Client(port, raw, args.items, args.users, seed=seed, run=run)
            for _ in range(args.max_requests):
                if time.monotonic() >= deadline:
                    break
                op, ms, status = client.one()
                with lock:
                    stats[op].append(ms)
                    if status < 200 or status >= 300:
                        errors[op] += 1

        threads = [threading.Thread(target=loop, args=(100 + i,), daemon=True) for i in range(args.clients)]
        for t in threads:
            t.start()
        while time.monotonic() < deadline:
            elapsed = time.monotonic() - started
            web = sum(rss_mb(p) for p in children(gunicorn.pid))
            work = rss_mb(worker.pid) + sum(rss_mb(p) for p in children(worker.pid))
            rss.append((elapsed, web, work))
            bar.n = int(elapsed)
            bar.set_postfix(
                requests=sum(len(v) for v in stats.values()), web_mb=int(web), worker_mb=int(work)
            )
            bar.refresh()
            time.sleep(min(RSS_SAMPLE_SECONDS, max(0.0, deadline - time.monotonic())))
        for t in threads:
            t.join(timeout=120)
        wall = time.monotonic() - started
        bar.close()
        web = sum(rss_mb(p) for p in children(gunicorn.pid))
        work = rss_mb(worker.pid) + sum(rss_mb(p) for p in children(worker.pid))
        rss.append((wall, web, work))
    finally:
        gunicorn.stop(grace=30)
        worker.stop(grace=30)

    stored = Event.objects.count() - events_before
    total = sum(len(v) for v in stats.values())
    total_errors = sum(errors.values())
    print()
    print(
        f"### load: {args.minutes:g} min, {args.clients} clients, {args.workers} gunicorn workers + 1 Celery "
        f"worker, {args.items:,} items / {args.users:,} users; load average now {load_average():.1f}"
    )
    print()
    print("| endpoint | share | requests | req/s | p50 ms | p95 ms | p99 ms | errors |")
    print("|---|---|---|---|---|---|---|---|")
    for name, values in stats.items():
        print(
            f"| {name} | {len(values) / max(total, 1):.0%} | {len(values):,} | {len(values) / wall:.1f} | "
            f"{percentile(values, 50):.0f} | {percentile(values, 95):.0f} | {percentile(values, 99):.0f} | "
            f"{errors[name]} |"
        )
    print(
        f"| **all** | 100% | {total:,} | **{total / wall:.1f}** | | | | {total_errors} ({total_errors / max(total, 1):.2%}) |"
    )
    print()
    half = [r for r in rss if r[0] >= wall / 2]
    print("| memory (RSS, MB) | first sample | at half time | last sample | growth over 2nd half |")
    print("|---|---|---|---|---|")
    for label, index in (("gunicorn workers (sum)", 1), ("Celery worker (sum)", 2)):
        print(
            f"| {label} | {rss[0][index]:.0f} | {half[0][index]:.0f} | {rss[-1][index]:.0f} | "
            f"{rss[-1][index] - half[0][index]:+.0f} |"
        )
    print()
    print(f"events stored during the run: {stored:,}")
    if total_errors / max(total, 1) > 0.01:
        sys.exit("error rate above 1%")


if __name__ == "__main__":
    main()

"""Serving latency through the full HTTP stack: gunicorn on loopback, Api-Key auth, retrieval, re-ranking,
hydration, the served-list log, JSON. p50/p95/p99 at concurrency 1 and requests per second at concurrency
8 for users / similar / session / search, on 100,000 items and 10,000 users (bench/serving_data.py), beside
a floor measured in the same run: a minimal DRF endpoint returning 10 small items through the same gunicorn
(bench/floor_urls.py).

    .venv/bin/python -m bench.serving_latency [--requests 400] [--seconds 15] [--workers 4]
        [--items 100000 --users 10000] [--endpoints floor,users,...] [--configs after | before,after]

`--configs before,after` runs two gunicorns side by side, measured in turns, endpoint by endpoint:
- before: the served-list INSERT on the request path, the API key read per request, and Django's
  per-request connection health check (RECSYS_SERVED_LOG_BUFFERED=0, RECSYS_API_KEY_CACHE_SECONDS=0,
  RECSYS_DB_HEALTH_CHECKS=1): the round trips of issue 15, item 4 and item 2, put back by their settings;
- after: the defaults (buffered log, keys cached 5 s, no health check).

The load generator runs on the same 2 cores as gunicorn and Postgres, and the machine is shared with other
work: the figures are noisy and on the pessimistic side; the ratios to the floor are what to compare.
Semantic search embeds every query with the real MiniLM model inside the request.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import statistics
import threading
import time

from bench.harness import load_average, load_line, percentile, start_gunicorn

QUERIES = [
    "wireless headphones", "running shoes for women", "stainless steel kettle", "kids winter jacket",
    "gaming laptop 16gb", "organic green tea", "leather wallet for men", "yoga mat non slip",
    "bluetooth speaker waterproof", "ceramic coffee mug", "cordless drill", "summer dress floral",
    "baby stroller lightweight", "desk lamp led", "phone case iphone", "mechanical keyboard",
    "garden hose 30m", "camping tent 4 person", "electric toothbrush", "sofa cushion covers",
]  # fmt: skip


class Client:
    def __init__(self, port: int, key: str, n_items: int, n_users: int, seed: int):
        self.port, self.key = port, key
        self.n_items, self.n_users = n_items, n_users
        self.rng = random.Random(seed)

    def request(self, endpoint: str) -> tuple[float, int]:
        rng = self.rng
        body = None
        method = "GET"
        if endpoint == "users":
            path = f"/api/v1/recommendations/users/user-{rng.randrange(self.n_users)}"
        elif endpoint == "similar":
            path = f"/api/v1/recommendations/items/item-{rng.randrange(self.n_items)}/similar"
        elif endpoint == "floor":
            path = "/bench/floor"
        elif endpoint == "session":
            method, path = "POST", "/api/v1/recommendations/session"
            body = json.dumps({"item_ids": [f"item-{rng.randrange(self.n_items)}" for _ in range(3)]})
        else:
            path = "/api/v1/search?q=" + QUERIES[rng.randrange(len(QUERIES))].replace(" ", "+")
        headers = {"Authorization": f"Api-Key {self.key}", "Content-Type": "application/json"}
        started = time.perf_counter()
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            status = response.status
        finally:
            conn.close()
        return (time.perf_counter() - started) * 1000.0, status


def run_sequential(client: Client, endpoint: str, n: int) -> tuple[list[float], int, float]:
    latencies, errors = [], 0
    started = time.perf_counter()
    for _ in range(n):
        ms, status = client.request(endpoint)
        latencies.append(ms)
        errors += status != 200
    return latencies, errors, time.perf_counter() - started


def run_sequential_paired(
    clients: dict[str, Client], endpoint: str, n: int
) -> dict[str, tuple[list[float], int, float]]:
    """n requests per config, one config after the other request by request: each config sees the same
    moments of a shared machine's load. Wall time per config is the sum of its own requests."""
    out: dict[str, tuple[list[float], int, float]] = {c: ([], 0, 0.0) for c in clients}
    for _ in range(n):
        for config, client in clients.items():
            started = time.perf_counter()
            ms, status = client.request(endpoint)
            lat, errors, wall = out[config]
            lat.append(ms)
            out[config] = (lat, errors + (status != 200), wall + time.perf_counter() - started)
    return out


def run_concurrent_paired(
    clients: dict[str, list[Client]], endpoint: str, seconds: float, slice_seconds: float = 2.0
) -> dict[str, tuple[list[float], int, float]]:
    """`seconds` per config at concurrency len(clients), in turns of `slice_seconds`."""
    out: dict[str, tuple[list[float], int, float]] = {c: ([], 0, 0.0) for c in clients}
    done = 0.0
    while done < seconds:
        step = min(slice_seconds, seconds - done)
        for config, group in clients.items():
            lat, errors, wall = run_concurrent(group, endpoint, step)
            total = out[config]
            out[config] = (total[0] + lat, total[1] + errors, total[2] + wall)
        done += step
    return out


def run_concurrent(clients: list[Client], endpoint: str, seconds: float) -> tuple[list[float], int, float]:
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def loop(client: Client) -> None:
        while time.perf_counter() < deadline:
            ms, status = client.request(endpoint)
            with lock:
                latencies.append(ms)
                errors[0] += status != 200

    threads = [threading.Thread(target=loop, args=(c,)) for c in clients]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, errors[0], time.perf_counter() - started


CONFIGS = {
    "before": {
        "RECSYS_SERVED_LOG_BUFFERED": "0",
        "RECSYS_API_KEY_CACHE_SECONDS": "0",
        "RECSYS_DB_HEALTH_CHECKS": "1",
    },
    "after": {},
}


def _gunicorn_start(*, config: str, workers: int):
    """The config's gunicorn, with the floor endpoint (bench/floor_settings.py); (process, port)."""
    env = dict(
        os.environ,
        DEBUG="0",
        RECSYS_EMBEDDING_THREADS="1",
        DJANGO_SETTINGS_MODULE="bench.floor_settings",
        **CONFIGS[config],
    )
    return start_gunicorn(f"bench_serving_gunicorn_{config}", workers=workers, env=env)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=400, help="requests per endpoint at concurrency 1")
    parser.add_argument("--seconds", type=float, default=15.0, help="duration per endpoint at concurrency 8")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn sync workers")
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--endpoints", default="floor,users,similar,session,search")
    parser.add_argument("--configs", default="after", help="after, or before,after (see above)")
    args = parser.parse_args()
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    if unknown := set(configs) - set(CONFIGS):
        raise SystemExit(f"unknown configs {sorted(unknown)}; choose from {sorted(CONFIGS)}")

    from bench import serving_data

    serving_data.ensure(n_items=args.items, n_users=args.users)
    from core.models import ApiKey
    from core.processes import cpu_seconds, stop_all

    _key, raw = ApiKey.generate(name=f"bench {os.getpid()}")
    from django.db import connection

    connection.close()

    servers: dict = {}  # config: (gunicorn, port)
    try:
        for config in configs:
            servers[config] = _gunicorn_start(config=config, workers=args.workers)
        endpoints = [e.strip() for e in args.endpoints.split(",") if e.strip()]
        print(
            f"gunicorn: {args.workers} sync workers per config ({', '.join(configs)}); {args.items} items, "
            f"{args.users} users; {load_line()}; warming up ...",
            flush=True,
        )
        for _, port in servers.values():
            warm = Client(port, raw, args.items, args.users, seed=1)
            for endpoint in endpoints:
                # enough requests that every worker has loaded what it caches (the embedding model for search)
                for _ in range(10 * args.workers if endpoint == "search" else 30):
                    warm.request(endpoint)

        rows = []
        for endpoint in endpoints:
            for concurrency in (1, 8):
                # gunicorn's workers. (Postgres backends come and go with CONN_MAX_AGE, and an exited process
                # takes its CPU count with it, so the database's share is not in this figure.)
                pids = {config: gunicorn.children() for config, (gunicorn, _) in servers.items()}
                cpu_before = {config: cpu_seconds(p) for config, p in pids.items()}
                if concurrency == 1:
                    measured = run_sequential_paired(
                        {c: Client(port, raw, args.items, args.users, 2) for c, (_, port) in servers.items()},
                        endpoint,
                        args.requests,
                    )
                else:
                    measured = run_concurrent_paired(
                        {
                            c: [
                                Client(port, raw, args.items, args.users, 100 + i) for i in range(concurrency)
                            ]
                            for c, (_, port) in servers.items()
                        },
                        endpoint,
                        args.seconds,
                    )
                for config, (lat, errors, wall) in measured.items():
                    row = {
                        "config": config,
                        "endpoint": endpoint,
                        "concurrency": concurrency,
                        "requests": len(lat),
                        "errors": errors,
                        "p50": percentile(lat, 50),
                        "p95": percentile(lat, 95),
                        "p99": percentile(lat, 99),
                        "mean": statistics.fmean(lat),
                        "rps": len(lat) / wall,
                        # CPU the gunicorn workers spent per request: what a request costs the app, whatever
                        # else the shared machine is doing at the time (with the served-list flusher thread)
                        "cpu_ms": (cpu_seconds(pids[config]) - cpu_before[config]) / max(len(lat), 1) * 1000,
                        "load": load_average(),
                    }
                    rows.append(row)
                    print(
                        f"{config:6s} {endpoint:8s} c={concurrency}  n={row['requests']:5d}  "
                        f"p50={row['p50']:7.1f} ms  p95={row['p95']:7.1f} ms  p99={row['p99']:7.1f} ms  "
                        f"{row['rps']:7.1f} req/s  app CPU {row['cpu_ms']:5.1f} ms/req  errors={errors}  "
                        f"load {row['load']:.1f}",
                        flush=True,
                    )
        print(f"\n{load_line('at the end')}")
        floor = {
            (r["config"], r["concurrency"]): r for r in rows if r["endpoint"] == "floor"
        }  # ratios against the floor of the same gunicorn
        print(
            "| config | endpoint | c | requests | p50 ms | p95 ms | p99 ms | req/s | p50 / floor | "
            "req/s / floor | app CPU ms/req | errors |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for r in rows:
            f = floor.get((r["config"], r["concurrency"]))
            p50_ratio = f"{r['p50'] / f['p50']:.1f}x" if f else ""
            rps_ratio = f"{r['rps'] / f['rps']:.2f}" if f else ""
            print(
                f"| {r['config']} | {r['endpoint']} | {r['concurrency']} | {r['requests']} | {r['p50']:.1f} | "
                f"{r['p95']:.1f} | {r['p99']:.1f} | {r['rps']:.1f} | {p50_ratio} | {rps_ratio} | "
                f"{r['cpu_ms']:.1f} | {r['errors']} |"
            )
    finally:
        stop_all([gunicorn for gunicorn, _ in servers.values()])


if __name__ == "__main__":
    main()

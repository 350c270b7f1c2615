"""Serving latency through the full HTTP stack: gunicorn on loopback, Api-Key auth, retrieval, re-ranking,
hydration, the served-list INSERT, JSON. p50/p95/p99 and requests per second at concurrency 1 and 8 for
users / similar / session / search, on 100,000 items and 10,000 users (bench/serving_data.py).

    .venv/bin/python bench/serving_latency.py [--requests 400] [--seconds 15] [--workers 4]

The load generator runs on the same 2 cores as gunicorn and Postgres, and the machine is shared with other
work: the figures are noisy and on the pessimistic side. Semantic search embeds every query with the real
MiniLM model inside the request.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

QUERIES = [
    "wireless headphones", "running shoes for women", "stainless steel kettle", "kids winter jacket",
    "gaming laptop 16gb", "organic green tea", "leather wallet for men", "yoga mat non slip",
    "bluetooth speaker waterproof", "ceramic coffee mug", "cordless drill", "summer dress floral",
    "baby stroller lightweight", "desk lamp led", "phone case iphone", "mechanical keyboard",
    "garden hose 30m", "camping tent 4 person", "electric toothbrush", "sofa cushion covers",
]  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes so far (from /proc; processes gone count zero)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / os.sysconf("SC_CLK_TCK")


def _server_pids(master: int) -> list[int]:
    """gunicorn's workers. (Postgres backends come and go with CONN_MAX_AGE, and an exited process takes
    its CPU count with it, so the database's share is not in this figure.)"""
    return [int(p) for p in Path(f"/proc/{master}/task/{master}/children").read_text().split()]


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


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


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=400, help="requests per endpoint at concurrency 1")
    parser.add_argument("--seconds", type=float, default=15.0, help="duration per endpoint at concurrency 8")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn sync workers")
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--endpoints", default="users,similar,session,search")
    args = parser.parse_args()

    import serving_data

    serving_data.ensure(n_items=args.items, n_users=args.users)
    from recsys_project.models import ApiKey

    _key, raw = ApiKey.generate(name=f"bench {os.getpid()}")
    from django.db import connection

    connection.close()

    port = _free_port()
    log = (REPO / "var" / "bench_serving_gunicorn.log").open("w")
    env = dict(os.environ, DEBUG="0", RECSYS_EMBEDDING_THREADS="1")
    gunicorn = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "recsys_project.wsgi:application", "-b", f"127.0.0.1:{port}",
         "-w", str(args.workers), "--timeout", "120", "--log-level", "warning"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or gunicorn.poll() is not None:
                    raise SystemExit("gunicorn did not start; see var/bench_serving_gunicorn.log") from None
                time.sleep(0.3)
        endpoints = [e.strip() for e in args.endpoints.split(",") if e.strip()]
        warm = Client(port, raw, args.items, args.users, seed=1)
        print(
            f"gunicorn: {args.workers} sync workers on 127.0.0.1:{port}; load average {os.getloadavg()[0]:.1f}; "
            "warming up ...",
            flush=True,
        )
        for endpoint in endpoints:
            # enough requests that every worker has loaded what it caches (the embedding model for search)
            for _ in range(10 * args.workers if endpoint == "search" else 30):
                warm.request(endpoint)

        rows = []
        for endpoint in endpoints:
            for concurrency in (1, 8):
                pids = _server_pids(gunicorn.pid)
                cpu_before = _cpu_seconds(pids)
                if concurrency == 1:
                    lat, errors, wall = run_sequential(
                        Client(port, raw, args.items, args.users, 2), endpoint, args.requests
                    )
                else:
                    clients = [Client(port, raw, args.items, args.users, 100 + i) for i in range(concurrency)]
                    lat, errors, wall = run_concurrent(clients, endpoint, args.seconds)
                row = {
                    "endpoint": endpoint,
                    "concurrency": concurrency,
                    "requests": len(lat),
                    "errors": errors,
                    "p50": _percentile(lat, 50),
                    "p95": _percentile(lat, 95),
                    "p99": _percentile(lat, 99),
                    "mean": statistics.fmean(lat),
                    "rps": len(lat) / wall,
                    # CPU the gunicorn workers spent per request: what a request costs the app, whatever
                    # else the shared machine is doing at the time
                    "cpu_ms": (_cpu_seconds(pids) - cpu_before) / max(len(lat), 1) * 1000,
                }
                rows.append(row)
                print(
                    f"{endpoint:8s} c={concurrency}  n={row['requests']:5d}  p50={row['p50']:7.1f} ms  "
                    f"p95={row['p95']:7.1f} ms  p99={row['p99']:7.1f} ms  {row['rps']:7.1f} req/s  "
                    f"app CPU {row['cpu_ms']:5.1f} ms/req  errors={errors}",
                    flush=True,
                )
        print(f"\nload average at the end: {os.getloadavg()[0]:.1f} (2 cores, shared)")
        print(
            "| endpoint | concurrency | requests | p50 ms | p95 ms | p99 ms | req/s | app CPU ms/req | errors |"
        )
        print("|---|---|---|---|---|---|---|---|---|")
        for r in rows:
            print(
                f"| {r['endpoint']} | {r['concurrency']} | {r['requests']} | {r['p50']:.1f} | {r['p95']:.1f} | "
                f"{r['p99']:.1f} | {r['rps']:.1f} | {r['cpu_ms']:.1f} | {r['errors']} |"
            )
    finally:
        os.killpg(gunicorn.pid, signal.SIGTERM)
        try:
            gunicorn.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(gunicorn.pid, signal.SIGKILL)
        log.close()


if __name__ == "__main__":
    main()

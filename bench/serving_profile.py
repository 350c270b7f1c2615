"""Where a serving request spends its CPU: the full Django stack in-process (middleware, Api-Key auth, DRF,
the scenario, JSON) through Django's test client, on the serving benchmarks' database
(bench/serving_data.py). Prints this process's CPU per request and, with --top, a cProfile of the
functions with the most cumulative and own time.

    .venv/bin/python -m bench.serving_profile [--endpoint users] [--requests 200] [--top 25]

CPU time (time.process_time) of this process only: Postgres's share is not in it, nor gunicorn's own
(a few hundred microseconds). The machine is shared, so even CPU figures move by 10-20% between runs;
compare runs made one after the other.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import random
import statistics
import time

from bench.harness import load_line, percentile


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--endpoint", default="users", choices=["users", "similar", "session", "search"])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--top", type=int, default=0, help="functions to list from a cProfile (0: none)")
    args = parser.parse_args()

    from bench import serving_data
    from bench.serving_latency import QUERIES

    serving_data.ensure()
    from django.test import Client

    from recsys_project.models import ApiKey

    _key, raw = ApiKey.generate(name=f"profile {os.getpid()}")
    client = Client(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    rng = random.Random(2)

    def request() -> None:
        if args.endpoint == "users":
            response = client.get(f"/api/v1/recommendations/users/user-{rng.randrange(10_000)}")
        elif args.endpoint == "similar":
            response = client.get(f"/api/v1/recommendations/items/item-{rng.randrange(100_000)}/similar")
        elif args.endpoint == "session":
            ids = [f"item-{rng.randrange(100_000)}" for _ in range(3)]
            response = client.post(
                "/api/v1/recommendations/session",
                json.dumps({"item_ids": ids}),
                content_type="application/json",
            )
        else:
            response = client.get("/api/v1/search", {"q": QUERIES[rng.randrange(len(QUERIES))]})
        assert response.status_code == 200, response.content[:300]

    for _ in range(30):  # warm up: caches, the model for search, connection
        request()
    cpu = []
    for _ in range(args.requests):
        started = time.process_time()
        request()
        cpu.append((time.process_time() - started) * 1000)
    cpu.sort()
    print(
        f"{args.endpoint}: {args.requests} requests, app CPU per request (this process): "
        f"mean {statistics.fmean(cpu):.2f} ms, p50 {percentile(cpu, 50):.2f} ms, "
        f"p90 {percentile(cpu, 90):.2f} ms; {load_line()}"
    )
    if args.top:
        profiler = cProfile.Profile(time.process_time)  # CPU, not time spent waiting on Postgres
        profiler.enable()
        for _ in range(args.requests):
            request()
        profiler.disable()
        for order in ("cumulative", "tottime"):
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats(order).print_stats(args.top)
            print(out.getvalue())
        if os.environ.get("PROFILE_CALLERS"):
            pstats.Stats(profiler).sort_stats("tottime").print_callers(os.environ["PROFILE_CALLERS"])
    _key.delete()


if __name__ == "__main__":
    main()

"""Where a serving request spends its CPU: the full Django stack in-process (middleware, Api-Key auth, DRF,
the scenario, JSON) through Django's test client, on the serving benchmarks' database
(bench/serving_data.py). Prints this process's CPU per request and, with --top, a cProfile of the
functions with the most cumulative and own time.

    .venv/bin/python -m bench.serving_profile [--endpoint users] [--requests 200] [--top 25] [--hits 200]

With `--steps`, it also prints the wall-clock and CPU p50 of the serving steps (`STEPS`: the API key and
the throttle, the options, the user's state, features, re-ranking, explanations, the log, the JSON), timed
around the functions themselves as their callers look them up.

For `search`, `--steps` shows the query's embedding (`query_vector`); the query vectors are cached per
process, and the bench's queries repeat, so after the warm-up they are cache hits: `--query-cache-off`
embeds every query, as search did before the cache.

With `--hits N`, `users` asks only for the first N users, after computing their pre-computed candidate lists
(candidate_cache), and checks that every answer was served from them (`X-Recsys-Cache: hit`).

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

# as in a gunicorn worker (recsys_project/wsgi.py): set before anything imports numpy
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from bench.harness import load_line, percentile  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--endpoint", default="users", choices=["users", "similar", "session", "search"])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--top", type=int, default=0, help="functions to list from a cProfile (0: none)")
    parser.add_argument("--hits", type=int, default=0, help="users: only the first N, from their lists")
    parser.add_argument("--steps", action="store_true", help="wall-clock p50 of the serving steps")
    parser.add_argument(
        "--query-cache-off",
        action="store_true",
        help="search: forget the query vectors before each request (every query embedded, as before the cache)",
    )
    args = parser.parse_args()

    from bench import serving_data
    from bench.serving_latency import QUERIES

    serving_data.ensure()
    from django.test import Client

    from core.models import ApiKey

    if args.hits:
        from recommendations.candidate_cache import candidate_lists_refresh

        candidate_lists_refresh(user_ids=[f"user-{i}" for i in range(args.hits)])
    _key, raw = ApiKey.generate(name=f"profile {os.getpid()}")
    client = Client(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    rng = random.Random(2)

    def request() -> None:
        if args.endpoint == "users":
            response = client.get(f"/api/v1/recommendations/users/user-{rng.randrange(args.hits or 10_000)}")
            assert not args.hits or response.headers["X-Recsys-Cache"] == "hit", response.headers
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
            if args.query_cache_off:
                from catalog.embedding import _query_vector

                _query_vector.cache_clear()
            response = client.get("/api/v1/search", {"q": QUERIES[rng.randrange(len(QUERIES))]})
        assert response.status_code == 200, response.content[:300]

    for _ in range(30):  # warm up: caches, the model for search, connection
        request()
    timings = _steps_time() if args.steps else {}
    walls = []
    cpu = []
    for _ in range(args.requests):
        started, wall = time.process_time(), time.perf_counter()
        request()
        cpu.append((time.process_time() - started) * 1000)
        walls.append((time.perf_counter() - wall) * 1000)
    cpu.sort()
    print(
        f"{args.endpoint}: {args.requests} requests, app CPU per request (this process): "
        f"mean {statistics.fmean(cpu):.2f} ms, p50 {percentile(cpu, 50):.2f} ms, "
        f"p90 {percentile(cpu, 90):.2f} ms; {load_line()}"
    )
    if timings:
        print(f"wall per request p50 {percentile(walls, 50):.2f} ms")
        for name, values in timings.items():
            if not values:
                continue
            walls_, cpus = [w for w, _ in values], [c for _, c in values]
            per_request = sum(cpus) / args.requests
            print(
                f"  {name}: wall p50 {percentile(walls_, 50):.2f} ms, CPU p50 {percentile(cpus, 50):.3f} ms, "
                f"CPU per request {per_request:.3f} ms ({len(values)} calls)"
            )
        _steps_time(restore=True)
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


# The serving steps `--steps` times: (module, attribute as the caller looks it up).
STEPS = (
    ("core.authentication", "api_key_active"),
    ("core.authentication", "rate_limit_hit"),
    ("recommendations.api.views", "list_params"),
    ("recommendations.selectors", "user_state"),
    ("catalog.embedding", "query_vector"),
    ("recommendations.candidate_cache", "key_current"),
    ("recommendations.selectors", "promotions_live"),
    ("recommendations.selectors", "items_features"),
    ("recommendations.scenarios", "rerank"),
    ("recommendations.scenarios", "_explain"),
    ("recommendations.services", "served_list_log"),
    ("recommendations.api.views", "answer_data"),
)
_originals: dict[tuple[str, str], object] = {}


def _steps_time(*, restore: bool = False) -> dict[str, list[tuple[float, float]]]:
    """Wraps each of STEPS in a timer of wall clock and this process's CPU (or puts the originals back);
    the lists of (wall ms, CPU ms) fill as requests run. Nested steps count in both."""
    import importlib

    timings: dict[str, list[tuple[float, float]]] = {}
    for module_name, attribute in STEPS:
        module = importlib.import_module(module_name)
        if restore:
            setattr(module, attribute, _originals.pop((module_name, attribute)))
            continue
        original = _originals.setdefault((module_name, attribute), getattr(module, attribute))
        spent = timings.setdefault(attribute, [])

        def timed(*args, _original=original, _spent=spent, **kwargs):
            started, cpu = time.perf_counter(), time.process_time()
            try:
                return _original(*args, **kwargs)
            finally:
                _spent.append(((time.perf_counter() - started) * 1000, (time.process_time() - cpu) * 1000))

        setattr(module, attribute, timed)
    return timings


if __name__ == "__main__":
    main()

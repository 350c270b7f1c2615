"""Issue 13's latency bar in one run: the `users` path (`recommendations_for_user`, in process, the live
path: no pre-computed candidates) with single retrieval (no ranker: the path before the ranker) and with
the ranker, p50/p95 over the same users, against the ranker's own cost (`Ranker.predict` on 500
candidates, and its feature building), with the load average. Database `recsys_bench_twotower` (Online
Retail, set up as for bench/two_tower.py, co-visitation table built by `train_model`).

The bar: "ranked - single <= the ranker's own cost". Both readings of the ranker's own cost are printed:
`predict` alone, and `predict` + its features (`context_features`).

Then, in the same run, the `users` endpoint's function as a shop's request runs it (no preview, the
candidate cache on): single retrieval without the cache (the path before issues 13 and 15), ranked from
the user's pre-computed list (a hit) and ranked live (a miss), so the bar can be read both ways. Every
table has the CPU per request (this process + its database backend, from /proc): on the shared,
saturated box wall clock is mostly waiting for a core; CPU is the work the load multiplies.

  .venv/bin/python -m bench.ranked_latency [--users 150] [--ranker PATH] [--steps]
      [--save-lists FILE | --check-lists FILE]

- `--ranker PATH`: a saved ranker (`ranker_save`'s directory); without it, the database's active ranker,
  else one is trained on every event (`ranker_fit`, leave-one-out, `--ranker-users`) and saved under
  var/bench_ranked_latency/ for the next run.
- `--steps`: the ranked path per step (wall clock, p50 per request, summed over the calls in a request),
  with the SQL statements' own time and count.
- `--save-lists FILE` / `--check-lists FILE`: the ranked answers (item ids and scores, before and after
  re-ranking) of the users, written, or compared with a file written by another commit: a speed-up must
  not change an answer. Run with the same `--ranker`.
- `--covisitation memory`: co-visitation from matrices of every event in memory (what `bench.ranker
  --cost-only` measured), instead of the table the product reads.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.harness import REPO, database_url, load_average, load_line, percentile

os.environ.setdefault("DATABASE_URL", database_url("recsys_bench_twotower"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "recsys_project.settings")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# as the served process sets it (recsys_project/wsgi.py), before numpy loads; OPENBLAS_NUM_THREADS=2 on
# the command line measures OpenBLAS's default on this machine
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

OUT = REPO / "var" / "bench_ranked_latency"
PASSES = 3


def _setup() -> None:
    import django

    django.setup()
    from django.db import connection

    # a copy of it (CREATE DATABASE recsys_bench_twotower_x TEMPLATE recsys_bench_twotower) is fine too
    if not connection.settings_dict["NAME"].startswith("recsys_bench_twotower"):
        sys.exit("refusing to run outside the recsys_bench_twotower database (or a copy of it)")


def _ranker(path: str | None, ranker_users: int):
    from recommendations.ranker.model import ranker_load
    from recommendations.ranker.serving import ranker_active

    if path:
        return ranker_load(path), f"saved ({path})"
    active = ranker_active()
    if active is not None:
        return active.ranker, f"the active version {active.name}"
    saved = OUT / f"ranker-{ranker_users}"
    if (saved / "model.txt").exists():
        return ranker_load(saved), f"saved ({saved})"
    import numpy as np

    from training import evaluation
    from training.ranker.training import ranker_fit

    data = evaluation.events_load()
    vectors = evaluation.item_vectors_load(data)
    started = time.perf_counter()
    ranker = ranker_fit(
        data, np.arange(len(data.ts)), vectors, protocol="leave-one-out", max_users=ranker_users
    )
    saved.mkdir(parents=True, exist_ok=True)
    (saved / "model.txt").write_text(ranker.booster.model_to_string())
    (saved / "meta.json").write_text(json.dumps({"sources": list(ranker.sources), "info": ranker.info}))
    return ranker, f"trained on every event in {time.perf_counter() - started:.0f} s, saved to {saved}"


def _users(n: int) -> list[str]:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(
            "SELECT user_id FROM interactions_event WHERE user_id IS NOT NULL GROUP BY user_id "
            "ORDER BY md5(user_id) LIMIT %s",
            [n],
        )
        return [r[0] for r in cur.fetchall()]


class Steps:
    """Wall-clock time per named step, summed within a request (`request()` starts one)."""

    def __init__(self) -> None:
        self.current: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.requests: list[dict[str, float]] = []

    def request(self) -> None:
        self.current = defaultdict(float)
        self.requests.append(self.current)

    def wrap(self, name: str, fn: Callable) -> Callable:
        def timed(*args: Any, **kwargs: Any) -> Any:
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.current[name] += (time.perf_counter() - t) * 1000
                self.calls[name] += 1

        timed.__name__ = getattr(fn, "__name__", name)
        return timed


class Cpu:
    """CPU time spent on requests: this process's, and its database backend's (read from /proc: the
    embedded server runs on this machine; None elsewhere). On the shared, saturated box wall clock is
    mostly waiting for a core, several times the work; CPU per request is the work itself, which is what
    the load multiplies. The backend's counter ticks every 10 ms: read it over a whole pass."""

    def __init__(self) -> None:
        from django.db import connection

        with connection.cursor() as cur:
            cur.execute("SELECT pg_backend_pid()")
            pid = cur.fetchone()[0]
        self.stat = Path(f"/proc/{pid}/stat")
        self.tick = os.sysconf("SC_CLK_TCK")
        self.spent: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0])  # process, backend, requests

    def _backend_ms(self) -> float:
        try:
            fields = self.stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            return float("nan")
        return (int(fields[11]) + int(fields[12])) * 1000 / self.tick  # utime + stime

    @contextmanager
    def measure(self, label: str, requests: int):
        process, backend = time.process_time(), self._backend_ms()
        yield
        spent = self.spent[label]
        spent[0] += (time.process_time() - process) * 1000
        spent[1] += self._backend_ms() - backend
        spent[2] += requests

    def cells(self, label: str) -> str:
        process, backend, n = self.spent[label]
        return f"{process / n:.1f} + {backend / n:.1f} = {(process + backend) / n:.1f}"


@contextmanager
def _patched(steps: Steps):
    """Times the serving steps around the functions themselves (module attributes, as the callers look
    them up)."""
    from recommendations import scenarios, selectors, sources
    from recommendations.ranker import features
    from recommendations.ranker.model import Ranker
    from recommendations.two_tower import serving as two_tower_serving

    targets: list[tuple[Any, str, str]] = [
        (selectors, "user_context", "user context (history, vector)"),
        (two_tower_serving, "query_for_user", "two-tower user tower"),
        (sources, "sources_prefetch", "sources' reads (sources_prefetch, 2 round trips)"),
        (sources, "candidates_gather", "sources + union (candidates_gather)"),
        (features, "context_features", "features (context_features)"),
        (features, "item_arrays_load", "  features: attributes query"),
        (features, "features_matrix", "  features: numpy matrix"),
        (Ranker, "predict", "ranker predict"),
        (selectors, "items_features", "candidate features + cards query"),
        (scenarios, "rerank", "re-ranking"),
        (scenarios, "_explain", "explanations"),
        (sources.SourceContext, "covisitation", "  co-visitation rows (bought/viewed)"),
        (sources.SourceContext, "visit_scores", "  last visit summed rows"),
        (sources.SourceContext, "recent_vectors", "  recent items' vectors"),
    ]
    with ExitStack() as stack:
        for owner, attr, name in targets:
            if not hasattr(owner, attr):  # an older commit (before/after runs)
                continue
            original = getattr(owner, attr)
            setattr(owner, attr, steps.wrap(name, original))
            stack.callback(setattr, owner, attr, original)
        for key, fn in list(sources.SOURCES.items()):
            sources.SOURCES[key] = steps.wrap(f"  source {key}", fn)
            stack.callback(sources.SOURCES.__setitem__, key, fn)
        yield


def _answer(uid: str, params, preview):
    from recommendations import scenarios

    answer = scenarios.recommendations_for_user(user_id=uid, params=params, preview=preview)
    return [[item["id"], item["score"], item["reason"]] for item in answer.items]


def _endpoint(ids: list[str], params, ranker) -> None:
    """The `users` endpoint's function as a shop's request runs it (no preview: the clock is now, the
    pre-computed candidates are read first), three ways over the same users in alternating passes: single
    retrieval without the candidate cache (the path before issues 13 and 15), ranked from the user's
    pre-computed list (a hit: computed just before the pass, as the worker keeps it), and ranked live (a
    miss: no list, the user's state is read, then the live path)."""
    from django.test.utils import override_settings

    from recommendations import scenarios
    from recommendations.candidate_cache import candidate_lists_delete, candidate_lists_refresh
    from recommendations.ranker.serving import ranker_override

    modes = {
        "single retrieval, no candidate cache (before issues 13 and 15)": (None, False, None),
        "ranked, served from the pre-computed list (a hit)": (ranker, True, "refresh"),
        "ranked, live (a miss: no pre-computed list)": (ranker, True, "delete"),
    }
    timings: dict[str, list[float]] = {label: [] for label in modes}
    tags: dict[str, dict[str, int]] = {label: defaultdict(int) for label in modes}
    cpu = Cpu()
    load_during = []
    try:
        for p in range(PASSES):
            for label, (model, cache, lists) in modes.items():
                with ranker_override(model, name="bench"), override_settings(RECSYS_CANDIDATE_CACHE=cache):
                    if lists == "refresh":
                        candidate_lists_refresh(user_ids=ids)
                    elif lists == "delete":
                        candidate_lists_delete(user_ids=ids)
                    # the first pass warms
                    with cpu.measure(label if p > 0 else "warm", len(ids)):
                        for uid in ids:
                            t = time.perf_counter()
                            answer = scenarios.recommendations_for_user(user_id=uid, params=params)
                            if p > 0:
                                timings[label].append((time.perf_counter() - t) * 1000)
                                tags[label][answer.cache or "-"] += 1
                load_during.append(load_average())
    finally:
        candidate_lists_delete(user_ids=ids)
    print(
        f"\nthe users endpoint as a shop's request runs it (no preview), {len(ids)} users x {PASSES - 1} passes "
        f"each (after a warm one), load average during {min(load_during):.1f}-{max(load_during):.1f}:"
    )
    print(
        "| path | p50 ms | p95 ms | minus single retrieval, p50 | CPU ms per request (process + database) "
        "| answers (Answer.cache) |"
    )
    print("|---|---|---|---|---|---|")
    single = percentile(next(iter(timings.values())), 50)
    for label, values in timings.items():
        counted = ", ".join(f"{tag} {n}" for tag, n in sorted(tags[label].items()))
        print(
            f"| {label} | {percentile(values, 50):.1f} | {percentile(values, 95):.1f} "
            f"| {percentile(values, 50) - single:+.1f} | {cpu.cells(label)} | {counted} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=150)
    parser.add_argument("--ranker", help="a saved ranker's directory")
    parser.add_argument("--ranker-users", type=int, default=2500)
    parser.add_argument("--steps", action="store_true", help="the ranked path per step")
    parser.add_argument("--save-lists", help="write the ranked answers to this file")
    parser.add_argument("--check-lists", help="compare the ranked answers with this file")
    parser.add_argument("--covisitation", choices=["table", "memory"], default="table")
    args = parser.parse_args()
    print(
        f"load average at start: {load_average():.1f}; OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']}"
    )
    _setup()
    import numpy as np
    from django.db import connection

    from recommendations import scenarios, sources
    from recommendations.ranker import features as ranker_features
    from recommendations.ranker.serving import ranker_override

    ranker, origin = _ranker(args.ranker, args.ranker_users)
    print(f"ranker: {origin}; sources {ranker.sources}; {ranker.booster.num_trees()} trees")
    if args.covisitation == "memory":
        from training import evaluation
        from training.ranker.training import covisitation_neighbours_for

        data = evaluation.events_load()
        sources.covisitation_in_memory(covisitation_neighbours_for(data, np.arange(len(data.ts))))
    else:
        with connection.cursor() as cur:
            cur.execute("SELECT count(*) FROM recommendations_covisitationpair")
            pairs = cur.fetchone()[0]
        if not pairs:
            sys.exit("the co-visitation table is empty: run `manage.py train_model --only covisitation`")
        print(f"co-visitation from the table ({pairs:,} pairs)")

    ids = _users(args.users)
    params = scenarios.ListParams(limit=10)
    # served as of a fixed time: the re-ranking's freshness step moves every score with the clock, and the
    # answers of two runs (two commits) are compared to the last digit
    preview = scenarios.PreviewOptions(now=datetime(2026, 1, 1, tzinfo=UTC))

    # the ranker's own cost: predict on 500 candidates of a real request, and the features of that request
    captured: dict[str, Any] = {}
    original_features = ranker_features.context_features

    def capturing(context, gathered, *, now_ts, dim):
        t = time.perf_counter()
        x = original_features(context, gathered, now_ts=now_ts, dim=dim)
        captured.setdefault("features_ms", []).append((time.perf_counter() - t) * 1000)
        captured.setdefault("sizes", []).append(len(x))
        if len(x) > len(captured.get("x", ())):
            captured["x"] = x
        return x

    ranker_features.context_features = capturing
    try:
        with ranker_override(ranker):
            for uid in ids:
                _answer(uid, params, preview)
    finally:
        ranker_features.context_features = original_features
    x = captured["x"]
    if len(x) < 500:
        x = np.vstack([x] * (500 // len(x) + 1))
    x = x[:500]
    ranker.predict(x)
    predict_ms = []
    for _ in range(500):
        t = time.perf_counter()
        ranker.predict(x)
        predict_ms.append((time.perf_counter() - t) * 1000)

    # the users path: single retrieval and ranked, alternating passes over the same users
    timings: dict[str, list[float]] = {"single": [], "ranked": []}
    lists: dict[str, Any] = {}
    cpu = Cpu()
    load_during = []
    for p in range(PASSES):
        for label, model in (("single", None), ("ranked", ranker)):
            with ranker_override(model), cpu.measure(label if p > 0 else "warm", len(ids)):
                for uid in ids:
                    t = time.perf_counter()
                    out = _answer(uid, params, preview)
                    if p > 0:  # the first pass warms
                        timings[label].append((time.perf_counter() - t) * 1000)
                    if label == "ranked" and p == PASSES - 1:
                        lists[uid] = out
            load_during.append(load_average())

    single50, single95 = percentile(timings["single"], 50), percentile(timings["single"], 95)
    ranked50, ranked95 = percentile(timings["ranked"], 50), percentile(timings["ranked"], 95)
    pred50 = percentile(predict_ms, 50)
    feat50 = percentile(captured["features_ms"], 50)
    diff = ranked50 - single50
    print(
        f"\nusers path in process, {len(ids)} users x {PASSES - 1} passes each (after a warm one), "
        f"load average during {min(load_during):.1f}-{max(load_during):.1f} (2 cores, shared):"
    )
    print("| measure | p50 ms | p95 ms | CPU ms per request (process + database) |")
    print("|---|---|---|---|")
    print(
        f"| users, single retrieval (before the ranker) | {single50:.1f} | {single95:.1f} | {cpu.cells('single')} |"
    )
    print(
        f"| users, ranked (sources + features + ranker) | {ranked50:.1f} | {ranked95:.1f} | {cpu.cells('ranked')} |"
    )
    print(f"| difference ranked - single | {diff:.1f} | {ranked95 - single95:.1f} | |")
    print(f"| ranker.predict, 500 candidates | {pred50:.2f} | {percentile(predict_ms, 95):.2f} |")
    print(
        f"| ranker features (context_features), median {int(np.median(captured['sizes']))} candidates "
        f"| {feat50:.2f} | {percentile(captured['features_ms'], 95):.2f} |"
    )
    for reading, own in (("predict alone", pred50), ("predict + features", pred50 + feat50)):
        verdict = "met" if diff <= own else "NOT met"
        print(
            f"bar (ranked - single <= ranker's own cost, {reading} {own:.2f} ms): {verdict} ({diff:.1f} ms)"
        )
    print(load_line("at the end"))

    _endpoint(ids, params, ranker)

    if args.steps:
        steps = Steps()
        with ranker_override(ranker), _patched(steps):
            from django.test.utils import CaptureQueriesContext

            sql_ms, sql_n = [], []
            for uid in ids:
                steps.request()
                t = time.perf_counter()
                with CaptureQueriesContext(connection) as queries:
                    scenarios.recommendations_for_user(user_id=uid, params=params, preview=preview)
                steps.current["total"] = (time.perf_counter() - t) * 1000
                sql_ms.append(sum(float(q["time"]) for q in queries.captured_queries) * 1000)
                sql_n.append(len(queries.captured_queries))
        names = list(dict.fromkeys(name for r in steps.requests for name in r))
        print(f"\nranked path per step, {len(ids)} users, {load_line()}:")
        print("| step | p50 ms | p95 ms | calls per request |")
        print("|---|---|---|---|")
        for name in names:
            values = [r.get(name, 0.0) for r in steps.requests]
            calls = steps.calls.get(name, len(ids)) / len(ids)
            print(f"| {name} | {percentile(values, 50):.2f} | {percentile(values, 95):.2f} | {calls:.1f} |")
        print(
            f"| SQL statements (their own time) | {percentile(sql_ms, 50):.2f} | {percentile(sql_ms, 95):.2f} "
            f"| {np.median(sql_n):.0f} statements |"
        )

    if args.save_lists:
        Path(args.save_lists).write_text(json.dumps(lists))
        print(f"ranked answers of {len(lists)} users written to {args.save_lists}")
    if args.check_lists:
        before = json.loads(Path(args.check_lists).read_text())
        common = [u for u in lists if u in before]
        differ = [u for u in common if before[u] != lists[u]]
        print(
            f"ranked answers compared with {args.check_lists}: {len(common)} users, "
            f"{len(common) - len(differ)} identical, {len(differ)} different"
        )
        for u in differ[:5]:
            print(f"  {u}: before {before[u][:3]}... now {lists[u][:3]}...")
        if differ:
            sys.exit(1)


if __name__ == "__main__":
    main()

"""Candidate sources + LightGBM ranker on the UCI Online Retail data (database recsys_bench_twotower, set up
as for bench/two_tower.py).

Quality: for each seed and protocol, ONE `evaluation_run` with every method: the baselines, the strong
co-occurrence variant (`cooccurrence_visit`), each candidate source alone (`src_*`), the ranker's raw order
(`ranker`), the served default through the API's code (`served`: ranker, then the default profile's
re-ranking), the previous default path (`served_single_retrieval`) and optionally the two-tower model.
Prints Recall/NDCG@10/50, coverage@10, diversity@10 (mean over seeds), and per seed the paired bootstrap
interval of `served` minus the best single method on NDCG@10.

Blind tuning: `--validation` evaluates on the validation targets instead (leave-one-out: every user's
test item is removed from the data, so the validation item becomes the target; temporal: the last
`test_days` are removed, so the cut moves back). Settings are chosen there; test figures once.

  .venv/bin/python -m bench.ranker --validation --seeds 0 --protocols leave-one-out --max-users 800
  .venv/bin/python -m bench.ranker --seeds 0 1 2 --jobs 2 --max-users 1000
  .venv/bin/python -m bench.ranker --cost-only
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.harness import REPO, database_url, load_average, load_line, percentile

# Online Retail by default; bench/ranker_demo.py names the demo shop's database (inherited by the children)
DATABASE = os.environ.get("BENCH_RANKER_DATABASE", "recsys_bench_twotower")
os.environ.setdefault("DATABASE_URL", database_url(DATABASE))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "recsys_project.settings")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

BASELINES = ["popularity", "cooccurrence", "cooccurrence_visit", "content", "user_vector"]
SOURCES = [
    "src_bought_together",
    "src_viewed_together",
    "src_last_visit",
    "src_content_recent",
    "src_user_vector",
    "src_trending",
]
COLUMNS = ["ndcg@10", "ndcg@50", "recall@10", "recall@50", "coverage@10", "diversity@10"]
OUT = REPO / "var" / "bench_ranker"
# Users whose next items train the ranker (each costs one pass through the sources and features).
RANKER_USERS = 1000


def _setup() -> None:
    from bench.harness import django_setup

    django_setup()
    from django.db import connection

    if connection.settings_dict["NAME"] != DATABASE:
        sys.exit(f"refusing to run outside the {DATABASE} database")
    from training.ranker import training

    training.MATRIX_CACHE_DIR = OUT / "cache"


def validation_data(data, protocol: str, test_days: float = 14.0):
    """The data without the test targets: the split of this data scores the validation targets."""
    import numpy as np

    from training import evaluation

    keep = np.ones(len(data.ts), dtype=bool)
    if protocol == "temporal":
        keep = data.ts < float(data.ts.max()) - test_days * 86400.0
    else:
        for user, rows in evaluation._by_user(data).items():
            if user.startswith(evaluation.SESSION_ACTOR):
                continue
            items = data.item_idx[rows]
            _, first = np.unique(items, return_index=True)
            if len(first) < 4:  # keep users who still have test + validation + history afterwards
                continue
            last = items[np.sort(first)][-1]
            keep[rows[items == last]] = False
    rows = np.flatnonzero(keep)
    return evaluation.EventData(
        user_ids=data.user_ids[rows],
        item_idx=data.item_idx[rows],
        ts=data.ts[rows],
        event_type=data.event_type[rows],
        item_pks=data.item_pks,
        active=data.active,
    )


def quality_one(
    seed: int,
    protocol: str,
    *,
    validation: bool,
    max_users: int,
    two_tower: bool,
    ranker_users: int = RANKER_USERS,
    names: tuple[str, ...] | None = None,
) -> dict:
    _setup()
    from analytics.services import evaluation_run_save
    from training import evaluation
    from training.ranker.evaluation import cooccurrence_visit_factory, ranker_methods
    from training.served_recommender import served_scorer_factory

    data = evaluation.events_load()
    if validation:
        data = validation_data(data, protocol)
    passes: list = []
    extra = {
        "cooccurrence_visit": cooccurrence_visit_factory,
        **ranker_methods(
            seed=seed, holder=passes, max_users=ranker_users, **({"names": names} if names else {})
        ),
    }
    extra["served_single_retrieval"] = served_scorer_factory
    offered = [f"src_{n}" for n in names] if names else SOURCES
    methods = [*BASELINES, *offered, "served_single_retrieval", "ranker", "served"]
    if two_tower:
        from training.two_tower.evaluation import two_tower_factory

        extra["two_tower"] = two_tower_factory(seed=seed)
        methods.insert(len(BASELINES), "two_tower")
    started = time.perf_counter()
    result = evaluation.evaluation_run(
        protocol=protocol,
        methods=methods,
        extra_scorers=extra,
        label=f"bench ranker seed {seed}{' validation' if validation else ''}",
        progress=False,
        data=data,
        max_users=max_users,
    )
    run = evaluation_run_save(result=result)
    single = [m for m in methods if m not in ("ranker", "served", "served_single_retrieval")]
    ranker_pass = passes[0]
    return {
        "seed": seed,
        "protocol": protocol,
        "validation": validation,
        "methods": methods,
        "single": single,
        "paired": _paired(result, single),
        "run": run.pk,
        "users": result.summary["users_evaluated"] if not max_users else len(result.split.users),
        "metrics": result.metrics,
        "seconds": time.perf_counter() - started,
        "ranker_info": {k: v for k, v in ranker_pass.ranker.info.items() if k != "params"},
        "pass_ms_median": 1000 * percentile(ranker_pass.seconds_per_user, 50),
    }


def _paired(result, single: list[str], resamples: int = 2000) -> dict:
    """served and ranker minus the best single method on NDCG@10, per user (paired), with a 95% bootstrap
    interval over users (2,000 resamples, fixed seed)."""
    import numpy as np

    from training import metrics

    users, test = result.split.users, result.split.test

    def per_user(method: str) -> np.ndarray:
        return np.array([metrics.ndcg_at_k(result.rankings[method][u], test[u], 10) for u in users])

    best = max(single, key=lambda m: result.metrics[m]["ndcg@10"])
    draws = np.random.default_rng(0).integers(0, len(users), size=(resamples, len(users)))
    out = {"best_single": best}
    for method in ("served", "ranker"):
        diff = per_user(method) - per_user(best)
        means = diff[draws].mean(axis=1)
        out[method] = [
            float(diff.mean()),
            percentile(means, 2.5),
            percentile(means, 97.5),
        ]
    # the gate's own comparison on a fresh shop (`served` with the candidate against the single-retrieval
    # path) on the first n users of the same md5 order the gate samples (RECSYS_RANKER_GATE_USERS): does a
    # smaller gate still decide?
    if "served_single_retrieval" in result.rankings:
        import hashlib

        by_hash = np.argsort([hashlib.md5(u.encode()).hexdigest() for u in users], kind="stable")
        diff = (per_user("served") - per_user("served_single_retrieval"))[by_hash]
        rng = np.random.default_rng(0)
        for n in sorted({250, 500, 1000, 2000, len(users)}):
            if n > len(users):
                continue
            means = diff[:n][rng.integers(0, n, size=(resamples, n))].mean(axis=1)
            out[f"gate_{n}"] = [float(diff[:n].mean()), percentile(means, 2.5), percentile(means, 97.5)]
    return out


def quality(args) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    todo = [(s, p) for p in args.protocols for s in args.seeds]
    running: list[tuple[subprocess.Popen, Path]] = []
    results = []
    tag = "validation" if args.validation else "test"
    while todo or running:
        while todo and len(running) < args.jobs:
            seed, protocol = todo.pop(0)
            path = OUT / f"{tag}{args.tag}-{protocol}-{seed}.json"
            cmd = [sys.executable, "-m", "bench.ranker", "--one", str(seed), protocol, str(path)]
            cmd += ["--max-users", str(args.max_users)]
            cmd += ["--validation"] if args.validation else []
            cmd += ["--two-tower"] if args.two_tower else []
            cmd += ["--ranker-users", str(args.ranker_users)]
            cmd += ["--sources", *args.sources] if args.sources else []
            cmd += ["--ranker-params", args.ranker_params] if args.ranker_params else []
            running.append((subprocess.Popen(cmd, cwd=REPO), path))
        for proc, path in list(running):
            if proc.poll() is not None:
                running.remove((proc, path))
                if proc.returncode != 0:
                    sys.exit(f"{path.name}: exit {proc.returncode}")
                results.append(json.loads(path.read_text()))
        time.sleep(2)
    for protocol in args.protocols:
        table([r for r in results if r["protocol"] == protocol])


def table(rows: list[dict]) -> None:
    first = rows[0]
    print(
        f"\n### {first['protocol']}{' (validation)' if first['validation'] else ''}: {len(rows)} seed(s), "
        f"{first['users']} users (runs {[r['run'] for r in rows]})"
    )
    print("| method | " + " | ".join(COLUMNS) + " |")
    print("|---" * (len(COLUMNS) + 1) + "|")
    for method in first["methods"]:
        cells = []
        for column in COLUMNS:
            values = [r["metrics"][method][column] for r in rows]
            mean = statistics.fmean(values)
            spread = (
                f" ± {statistics.stdev(values):.4f}" if len(values) > 1 and max(values) > min(values) else ""
            )
            cells.append(f"{mean:.4f}{spread}")
        print(f"| {method} | " + " | ".join(cells) + " |")
    for r in rows:
        p = r["paired"]
        best = p["best_single"]
        line = f"seed {r['seed']}: best single {best} {r['metrics'][best]['ndcg@10']:.4f}"
        for method in ("served", "ranker"):
            mean, lo, hi = p[method]
            line += (
                f"; {method} {r['metrics'][method]['ndcg@10']:.4f} diff {mean:+.4f} [{lo:+.4f}, {hi:+.4f}]"
            )
        print(line)
        for key in sorted((k for k in p if k.startswith("gate_")), key=lambda k: int(k[5:])):
            mean, lo, hi = p[key]
            print(
                f"  served - served_single_retrieval, first {key[5:]} users: {mean:+.4f} [{lo:+.4f}, {hi:+.4f}]"
            )
        print(
            f"  ranker: {r['ranker_info']}; pass {r['pass_ms_median']:.0f} ms/user median; run {r['seconds']:.0f} s"
        )


def cost(users: int = 150, ranker_users: int = RANKER_USERS) -> None:
    """The ranker alone on 500 candidates, its training (rows + LightGBM) time and peak memory, and
    `recommendations_for_user` latency with and without the ranker, in the same run, on the same users."""
    import resource

    import numpy as np
    from django.db import connection

    _setup()
    from recommendations import scenarios, sources
    from recommendations.ranker.features import feature_names
    from recommendations.ranker.serving import ranker_override
    from training import evaluation
    from training.ranker.training import DEFAULT_SOURCES, covisitation_neighbours_for, ranker_fit

    data = evaluation.events_load()
    vectors = evaluation.item_vectors_load(data)
    everything = np.arange(len(data.ts))
    started = time.perf_counter()
    ranker = ranker_fit(data, everything, vectors, protocol="leave-one-out", max_users=ranker_users)
    fit_s = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"ranker training (up to {ranker_users} users' rows + LightGBM): {fit_s:.0f} s, process peak RSS {peak:.0f} MB"
    )
    print(f"  {ranker.info}")
    x = np.random.default_rng(0).random((500, len(feature_names(DEFAULT_SOURCES)))).astype(np.float32)
    ranker.predict(x)
    times = []
    for _ in range(500):
        t = time.perf_counter()
        ranker.predict(x)
        times.append((time.perf_counter() - t) * 1000)
    print(
        f"ranker.predict on 500 candidates: median {percentile(times, 50):.2f} ms, p95 {percentile(times, 95):.2f} ms"
    )

    with connection.cursor() as cur:
        cur.execute(
            "SELECT user_id FROM interactions_event WHERE user_id IS NOT NULL GROUP BY user_id "
            "ORDER BY md5(user_id) LIMIT %s",
            [users],
        )
        ids = [r[0] for r in cur.fetchall()]
    params = scenarios.ListParams(limit=10)
    preview = scenarios.PreviewOptions()
    sources.covisitation_in_memory(covisitation_neighbours_for(data, everything))

    def timed() -> list[float]:
        out = []
        for uid in ids:
            t = time.perf_counter()
            scenarios.recommendations_for_user(user_id=uid, params=params, preview=preview)
            out.append((time.perf_counter() - t) * 1000)
        return out

    results = {}
    for label, model in (("single retrieval", None), ("ranker", ranker), ("single retrieval again", None)):
        with ranker_override(model):
            timed()  # warm
            results[label] = timed()
    print(f"recommendations_for_user, {len(ids)} users, {load_line()}:")
    for label, values in results.items():
        print(f"  {label}: median {percentile(values, 50):.1f} ms, p95 {percentile(values, 95):.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--protocols", nargs="+", default=["leave-one-out", "temporal"])
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--max-users", type=int, default=1000, help="Evaluated users (a fixed sample).")
    parser.add_argument("--validation", action="store_true", help="Score validation targets (tuning).")
    parser.add_argument("--two-tower", action="store_true", help="Also train and score the two-tower model.")
    parser.add_argument("--cost-only", action="store_true")
    parser.add_argument(
        "--ranker-users", type=int, default=RANKER_USERS, help="Users whose next items train the ranker."
    )
    parser.add_argument("--sources", nargs="+", help="The ranker's sources (default: DEFAULT_SOURCES).")
    parser.add_argument(
        "--tag", default="", help="Suffix of the result files (several settings side by side)."
    )
    parser.add_argument(
        "--ranker-params",
        help="LightGBM parameters over the ranker's own, as JSON (tuning on --validation), e.g. '{\"num_leaves\": 7}'",
    )
    parser.add_argument("--one", nargs=3, metavar=("SEED", "PROTOCOL", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.ranker_params:
        _setup()
        from recommendations.ranker import model as ranker_model

        ranker_model.PARAMS.update(json.loads(args.ranker_params))
    if args.one:
        seed, protocol, out = args.one
        result = quality_one(
            int(seed),
            protocol,
            validation=args.validation,
            max_users=args.max_users,
            two_tower=args.two_tower,
            ranker_users=args.ranker_users,
            names=tuple(args.sources) if args.sources else None,
        )
        Path(out).write_text(json.dumps(result))
        return
    print(f"load average at start: {load_average():.1f}")
    if args.cost_only:
        cost(ranker_users=args.ranker_users)
        return
    quality(args)


if __name__ == "__main__":
    main()

"""Two-tower model on the UCI Online Retail data, in its own database (recsys_bench_twotower).

Quality: for each seed and protocol, ONE `evaluation_run` with every method (popularity, co-occurrence,
content-only, the weighted-average user vector, the two-tower model trained on that split's training
events); prints Recall/NDCG@10/20/50 as mean and spread (min-max and std) over the seeds, and the
two-tower's NDCG@10 margin over the best baseline per seed.
Cost: `train_model` (train + gate + publish) in a child process: wall time and peak RSS; then the user
tower per request (the query, and the numpy tower alone) and end-to-end `recommendations_for_user`
latency with the version active and with content vectors (after a rollback).

Setup once (see docs/two-tower.md):
  createdb recsys_bench_twotower; DATABASE_URL=... manage.py migrate; import_online_retail; embed_items

  .venv/bin/python -m bench.two_tower --seeds 0 1 2 --jobs 2      # quality (+ cost unless --no-cost)
  .venv/bin/python -m bench.two_tower --cost-only

The machine is 2 shared cores with other jobs running: times are noisy (the load average is printed).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.harness import REPO, database_url, load_average, load_line, percentile

os.environ.setdefault("DATABASE_URL", database_url("recsys_bench_twotower"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "recsys_project.settings")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

METHODS = ["popularity", "cooccurrence", "content", "user_vector", "two_tower"]
COLUMNS = ["recall@10", "ndcg@10", "recall@20", "ndcg@20", "recall@50", "ndcg@50"]
OUT = REPO / "var" / "bench_two_tower"


def _setup() -> None:
    from bench.harness import django_setup

    django_setup()
    from django.db import connection

    if connection.settings_dict["NAME"] != "recsys_bench_twotower":
        sys.exit("refusing to run outside the recsys_bench_twotower database")


def quality_one(seed: int, protocol: str) -> dict:
    """One evaluation run: every method, the two-tower trained with this seed."""
    _setup()
    from analytics.services import evaluation_run_save
    from training import evaluation
    from training.two_tower.evaluation import two_tower_factory

    trained = []
    result = evaluation.evaluation_run(
        protocol=protocol,
        methods=METHODS,
        extra_scorers={"two_tower": two_tower_factory(seed=seed, progress=True, on_trained=trained.append)},
        label=f"bench two-tower seed {seed}",
        progress=False,
    )
    run = evaluation_run_save(result=result)
    return {
        "seed": seed,
        "protocol": protocol,
        "paired": _paired_ndcg10(result),
        "run": run.pk,
        "users": result.summary["users_evaluated"],
        "metrics": result.metrics,
        "train_seconds": trained[0].seconds,
        "best_epoch": trained[0].best_epoch,
        "epochs": len(trained[0].history),
        "examples": trained[0].examples,
    }


def _paired_ndcg10(result, resamples: int = 2000) -> dict:
    """NDCG@10 of two-tower minus each baseline, per evaluated user (the same users, so the difference is
    paired): the mean and a 95% bootstrap interval over users (2,000 resamples, fixed seed)."""
    import numpy as np

    from training import metrics

    users, test = result.split.users, result.split.test

    def per_user(method: str) -> np.ndarray:
        return np.array([metrics.ndcg_at_k(result.rankings[method][u], test[u], 10) for u in users])

    tower = per_user("two_tower")
    rng = np.random.default_rng(0)
    draws = rng.integers(0, len(users), size=(resamples, len(users)))
    out = {}
    for method in METHODS[:-1]:
        diff = tower - per_user(method)
        means = diff[draws].mean(axis=1)
        out[method] = [
            float(diff.mean()),
            percentile(means, 2.5),
            percentile(means, 97.5),
        ]
    return out


def quality(seeds: list[int], protocols: list[str], jobs: int) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    todo = [(s, p) for p in protocols for s in seeds]
    running: list[tuple[subprocess.Popen, Path]] = []
    results = []
    while todo or running:
        while todo and len(running) < jobs:
            seed, protocol = todo.pop(0)
            path = OUT / f"quality-{protocol}-{seed}.json"
            cmd = [sys.executable, "-m", "bench.two_tower", "--one", str(seed), protocol, str(path)]
            running.append((subprocess.Popen(cmd, cwd=REPO), path))
        for proc, path in list(running):
            if proc.poll() is not None:
                running.remove((proc, path))
                if proc.returncode != 0:
                    sys.exit(f"{path.name}: exit {proc.returncode}")
                results.append(json.loads(path.read_text()))
        time.sleep(2)
    for protocol in protocols:
        rows = [r for r in results if r["protocol"] == protocol]
        _quality_table(protocol, rows)


def _quality_table(protocol: str, rows: list[dict]) -> None:
    print(
        f"\n### {protocol}: {len(rows)} seeds, {rows[0]['users']} users evaluated (runs {[r['run'] for r in rows]})"
    )
    print("| method | " + " | ".join(COLUMNS) + " |")
    print("|---" * (len(COLUMNS) + 1) + "|")
    for method in METHODS:
        cells = []
        for column in COLUMNS:
            values = [r["metrics"][method][column] for r in rows]
            mean = statistics.fmean(values)
            if max(values) - min(values) > 1e-12:
                sd = statistics.stdev(values) if len(values) > 1 else 0.0
                cells.append(f"{mean:.4f} ± {sd:.4f} ({min(values):.4f}-{max(values):.4f})")
            else:
                cells.append(f"{mean:.4f}")
        print(f"| {method} | " + " | ".join(cells) + " |")
    for r in rows:
        m = r["metrics"]
        best = max(METHODS[:-1], key=lambda x: m[x]["ndcg@10"])
        print(
            f"seed {r['seed']}: two_tower ndcg@10 {m['two_tower']['ndcg@10']:.4f} vs best baseline {best} "
            f"{m[best]['ndcg@10']:.4f} (margin {m['two_tower']['ndcg@10'] - m[best]['ndcg@10']:+.4f}); trained "
            f"{r['train_seconds']:.0f} s, {r['epochs']} epochs (best {r['best_epoch']}), {r['examples']} examples"
        )
        mean, lo, hi = r["paired"][best]
        print(
            f"  paired per-user difference vs {best}: {mean:+.4f}, 95% bootstrap interval [{lo:+.4f}, {hi:+.4f}]"
        )


def cost() -> None:
    load = load_average()
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, str(REPO / "manage.py"), "train_model", "--no-progress"],
        capture_output=True,
        text=True,
        env={**os.environ, "DATABASE_URL": os.environ["DATABASE_URL"]},
    )
    wall = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(proc.stdout.strip() or proc.stderr.strip()[-2000:])
    print(
        f"train_model (train on the gate's training split + gate evaluation + publish): {wall:.0f} s wall, peak RSS {peak_mb:.0f} MB; load average before {load:.1f}"
    )
    _setup()
    _latency()


def _latency(users: int = 200) -> None:
    import numpy as np
    from django.db import connection

    from recommendations import scenarios
    from recommendations.models import ModelVersion
    from recommendations.two_tower import serving
    from recommendations.two_tower.artifacts import artifact_load
    from recommendations.two_tower.features import distinct_first, sequence_encode
    from recommendations.two_tower.user_tower import user_vector_numpy
    from training.two_tower import registry

    version = ModelVersion.objects.filter(kind=ModelVersion.Kind.TWO_TOWER, is_active=True).first()
    if version is None:
        print("no active version (the gate rejected it): no serving figures")
        return
    with connection.cursor() as cur:
        cur.execute(
            "SELECT user_id FROM interactions_event WHERE user_id IS NOT NULL GROUP BY user_id ORDER BY md5(user_id) LIMIT %s",
            [users],
        )
        ids = [r[0] for r in cur.fetchall()]
    loaded = artifact_load(version.artifact_path)
    serving.query_for_user(user_id=ids[0])  # warm: the artifact and torch load once per process

    def timed(fn) -> list[float]:
        out = []
        for uid in ids:
            t = time.perf_counter()
            fn(uid)
            out.append((time.perf_counter() - t) * 1000)
        return out

    q = timed(lambda uid: serving.query_for_user(user_id=uid))
    # the tower alone, on a full 30-50 item sequence
    dim, max_len = loaded.trained.model.shape.dim, loaded.trained.config.max_len
    items = list(range(max_len))
    seq = sequence_encode(
        *distinct_first(items, ["purchase"] * max_len, [float(i) for i in items]), max_len=max_len
    )
    tokens = np.random.default_rng(0).normal(size=(max_len, dim)).astype(np.float32)
    tower = []
    for _ in range(2000):
        t = time.perf_counter()
        user_vector_numpy(loaded.user_tower, tokens, seq)
        tower.append((time.perf_counter() - t) * 1000)

    params = scenarios.ListParams(limit=10)
    preview = scenarios.PreviewOptions()
    with_model = timed(
        lambda uid: scenarios.recommendations_for_user(user_id=uid, params=params, preview=preview)
    )
    registry.model_rollback()
    serving.active_version_clear()
    content = timed(
        lambda uid: scenarios.recommendations_for_user(user_id=uid, params=params, preview=preview)
    )
    registry.model_rollback(to_version_id=version.pk)

    print(f"\nper request, {len(ids)} users, {load_line()}: noisy")
    print(
        f"user tower alone (numpy, {max_len} items): median {percentile(tower, 50):.3f} ms, p95 {percentile(tower, 95):.3f} ms"
    )
    print(
        f"user tower query (2 SQL reads + tower): median {percentile(q, 50):.2f} ms, p95 {percentile(q, 95):.2f} ms"
    )
    print(
        f"recommendations_for_user, two-tower active: median {percentile(with_model, 50):.1f} ms, p95 {percentile(with_model, 95):.1f} ms"
    )
    print(
        f"recommendations_for_user, content vectors:  median {percentile(content, 50):.1f} ms, p95 {percentile(content, 95):.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--protocols", nargs="+", default=["leave-one-out", "temporal"])
    parser.add_argument(
        "--jobs", type=int, default=1, help="Evaluation runs in parallel (1 torch thread each)."
    )
    parser.add_argument("--no-cost", action="store_true")
    parser.add_argument("--cost-only", action="store_true")
    parser.add_argument(
        "--latency-only", action="store_true", help="Serving figures with the active version."
    )
    parser.add_argument("--one", nargs=3, metavar=("SEED", "PROTOCOL", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        seed, protocol, out = args.one
        Path(out).write_text(json.dumps(quality_one(int(seed), protocol)))
        return
    print(f"load average at start: {load_average():.1f}")
    if args.latency_only:
        _setup()
        _latency()
        return
    if not args.cost_only:
        quality(args.seeds, args.protocols, args.jobs)
    if not args.no_cost:
        cost()


if __name__ == "__main__":
    main()

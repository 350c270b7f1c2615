"""Co-visitation on the UCI Online Retail data: choose the formula's constants on the validation item,
then report the held-out test item once for the chosen ones.

Protocol: analytics/evaluation.py's leave-one-out split. Each evaluated user's second-to-last distinct
item is the validation item; their training events end before it (the test item is held out too). A
user's anchors are the items of their last training visit (same timestamp: one invoice); the score of
an item is the sum of the anchors' normalised "bought" rows (Online Retail has only purchases, so
"bought" and "viewed" coincide). Training items are removed, as in the offline evaluation. The constants
are set on the module for each configuration; the matrices are built from the training events only.

Setup once, in its own database (like bench/two_tower.py):
  createdb recsys_bench_covisit; DATABASE_URL=postgresql://postgres@/recsys_bench_covisit?host=$PWD/var/pg
  manage.py migrate; manage.py import_online_retail ../shared/data/online_retail/online_retail.csv.gz

  nice .venv/bin/python bench/covisitation.py              # grid on validation, then test for the best
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DB_URL = "postgresql://postgres@/recsys_bench_covisit?host=" + str(ROOT / "var" / "pg")
os.environ.setdefault("DATABASE_URL", DB_URL)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "recsys_project.settings")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(ROOT))

DAY = 86400.0
K = 10


def _setup() -> None:
    import django

    django.setup()
    from django.db import connection

    if connection.settings_dict["NAME"] != "recsys_bench_covisit":
        sys.exit("refusing to run outside the recsys_bench_covisit database")


def _targets(data, split, which: str) -> tuple[list[str], dict[str, int], dict[str, list[int]]]:
    """Evaluated users, their target (validation or test item) and their last training visit's items."""
    from analytics.evaluation import _by_user

    train = np.zeros(len(data.item_idx), dtype=bool)
    train[split.train] = True
    target, last_visit = {}, {}
    by_user = _by_user(data)
    for user in split.users:
        rows = by_user[user]
        items = data.item_idx[rows]
        _, first = np.unique(items, return_index=True)
        distinct = items[np.sort(first)]
        target[user] = int(distinct[-2] if which == "validation" else distinct[-1])
        mine = rows[train[rows]]
        last_ts = data.ts[mine].max()
        last_visit[user] = sorted({int(i) for i in data.item_idx[mine[data.ts[mine] == last_ts]]})
    users = [u for u in split.users if data.active[target[u]]]
    return users, target, last_visit


def _evaluate(data, split, scores_m, popularity, users, target, anchors) -> dict[str, float]:
    from analytics import metrics

    tie = popularity / (popularity.max() + 1.0) * 1e-6
    ndcg, recall = [], []
    for user in users:
        s = np.asarray(scores_m[anchors[user]].sum(axis=0)).ravel() + tie
        s[~data.active] = -np.inf
        s[split.history[user]] = -np.inf
        top = np.argpartition(-s, K)[:K]
        top = top[np.argsort(-s[top], kind="stable")]
        ndcg.append(metrics.ndcg_at_k(list(top), {target[user]}, K))
        recall.append(metrics.recall_at_k(list(top), {target[user]}, K))
    return {"ndcg@10": float(np.mean(ndcg)), "recall@10": float(np.mean(recall))}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="a smaller grid")
    parser.add_argument("--reference-only", action="store_true", help="only the distinct-actor reference")
    args = parser.parse_args()
    _setup()
    from analytics import evaluation
    from recommendations import covisitation as cv

    t = time.perf_counter()
    data = evaluation.events_load()
    split = evaluation.split_build(data, protocol="leave-one-out")
    n_items = len(data.item_pks)
    tr = split.train
    print(
        f"loaded {len(data.ts):,} events, {n_items:,} items, {len(split.users):,} users in {time.perf_counter() - t:.1f} s"
    )
    actors, items, ts, types = data.user_ids[tr], data.item_idx[tr], data.ts[tr], data.event_type[tr]

    sets = {which: _targets(data, split, which) for which in ("validation", "test")}
    # Reference (not incremental, no order, no time): distinct training actors who had both items, over
    # their whole history, / sqrt(pop(b)): the previous session's best offline scorer.
    stats = evaluation.training_stats_build(data, split)
    reference = cv.covisitation_normalise(
        stats.cooccurrence.astype(np.float64), stats.popularity.astype(np.float64)
    )
    cv_exponents = (cv.ANCHOR_EXPONENT, cv.NEIGHBOUR_EXPONENT)
    for which in ("validation", "test"):
        cv.ANCHOR_EXPONENT, cv.NEIGHBOUR_EXPONENT = 0.0, 0.5
        reference = cv.covisitation_normalise(
            stats.cooccurrence.astype(np.float64), stats.popularity.astype(np.float64)
        )
        m = _evaluate(data, split, reference, stats.popularity.astype(np.float64), *sets[which])
        print(
            f"reference, distinct-actor co-occurrence / sqrt(pop): {which} NDCG@10 {m['ndcg@10']:.4f} "
            f"recall@10 {m['recall@10']:.4f}",
            flush=True,
        )
    cv.ANCHOR_EXPONENT, cv.NEIGHBOUR_EXPONENT = cv_exponents
    if args.reference_only:
        return

    # The pairs of the widest window once; each configuration filters and weighs them (the same
    # functions covisitation_matrices composes).
    windows = [3600.0, DAY, 7 * DAY, 30 * DAY]
    cv.WINDOW_SECONDS = max(windows)
    t0 = time.perf_counter()
    left, right = cv.event_pairs(actors=actors, ts=ts)
    print(
        f"{len(left):,} event pairs within {max(windows) / DAY:g} days in {time.perf_counter() - t0:.1f} s",
        flush=True,
    )
    dt = ts[right] - ts[left]

    def matrix():
        from scipy import sparse

        t0 = time.perf_counter()
        inside = dt <= cv.WINDOW_SECONDS
        rows, cols, vals = cv.pair_contributions(
            kind="bought", items=items, ts=ts, event_types=types, left=left[inside], right=right[inside]
        )
        pop = cv.item_popularity(kind="bought", items=items, event_types=types, n_items=n_items)
        raw = sparse.coo_matrix((vals, (rows, cols)), shape=(n_items, n_items)).tocsr()
        raw.sum_duplicates()
        return raw, pop, time.perf_counter() - t0

    half_lives = [DAY, 7 * DAY, 1e12]
    backwards = [0.25, 0.5, 1.0]
    norms = [(0.0, 0.0), (0.0, 0.5), (0.5, 0.5), (0.0, 1.0)]
    if args.quick:
        windows, half_lives, backwards = [DAY, 30 * DAY], [7 * DAY, 1e12], [0.5]

    def run(window, half_life, backward, norm, which="validation"):
        cv.WINDOW_SECONDS, cv.HALF_LIFE_SECONDS, cv.BACKWARD_FACTOR = window, half_life, backward
        cv.ANCHOR_EXPONENT, cv.NEIGHBOUR_EXPONENT = norm
        raw, pop, seconds = matrix()
        scores = cv.covisitation_normalise(raw, pop)
        users, target, anchors = sets[which]
        return _evaluate(data, split, scores, pop, users, target, anchors), seconds, raw.nnz

    results = []
    # stage 1: window x half-life with the default backward factor and normalisation
    for window, half_life in itertools.product(windows, half_lives):
        if half_life > 1e11 or half_life <= window * 7:
            m, seconds, nnz = run(window, half_life, 0.5, (0.5, 0.5))
            results.append(((window, half_life, 0.5, (0.5, 0.5)), m))
            print(
                f"window {window / DAY:7.2f} d  half-life {half_life / DAY:9.1f} d  backward 0.5  norm (0.5, 0.5)  "
                f"validation NDCG@10 {m['ndcg@10']:.4f} recall@10 {m['recall@10']:.4f}  ({seconds:.1f} s, {nnz:,} pairs)",
                flush=True,
            )
    best = max(results, key=lambda r: r[1]["ndcg@10"])[0]
    # stage 2: backward factor and normalisation at the best window and half-life
    for backward, norm in itertools.product(backwards, norms):
        config = (best[0], best[1], backward, norm)
        if config == best:
            continue
        m, seconds, _ = run(*config)
        results.append((config, m))
        print(
            f"window {config[0] / DAY:7.2f} d  half-life {config[1] / DAY:9.1f} d  backward {backward}  norm {norm}  "
            f"validation NDCG@10 {m['ndcg@10']:.4f} recall@10 {m['recall@10']:.4f}  ({seconds:.1f} s)",
            flush=True,
        )
    best, best_m = max(results, key=lambda r: r[1]["ndcg@10"])
    print(
        f"\nbest on validation: window {best[0] / DAY:g} d, half-life {best[1] / DAY:g} d, backward {best[2]}, "
        f"norm (anchor, neighbour) exponents {best[3]}: NDCG@10 {best_m['ndcg@10']:.4f}"
    )
    m, seconds, nnz = run(*best, which="test")
    print(
        f"test (reported once, not used to choose): NDCG@10 {m['ndcg@10']:.4f} recall@10 {m['recall@10']:.4f}; "
        f"matrices of {len(ts):,} training events in {seconds:.1f} s ({nnz:,} entries)"
    )


if __name__ == "__main__":
    main()

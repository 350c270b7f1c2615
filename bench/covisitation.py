"""Co-visitation on the UCI Online Retail data: choose the formula's constants on the validation item,
then report the held-out test item once for the chosen ones.

Protocol: training/evaluation.py's leave-one-out split. Each evaluated user's second-to-last distinct
item is the validation item; their training events end before it (the test item is held out too). A
user's anchors are the items of their last training visit (same timestamp: one invoice); the score of
an item is the sum of the anchors' normalised "bought" rows (Online Retail has only purchases, so
"bought" and "viewed" coincide). Training items are removed, as in the offline evaluation. The constants
are set on the module for each configuration; the matrices are built from the training events only.

Setup once, in its own database (like bench/two_tower.py):
  createdb recsys_bench_covisit; DATABASE_URL=postgresql://postgres@/recsys_bench_covisit?host=$PWD/var/pg
  manage.py migrate; manage.py import_online_retail ../shared/data/online_retail/online_retail.csv.gz

  nice .venv/bin/python -m bench.covisitation              # grid on validation, then test for the best

Window sweep (`--sweep-windows`, validation only, both protocols, the served reading): the validation data
of bench/ranker.py (leave-one-out: each user's test item removed, so the validation item is the target;
temporal: the last 14 days removed, the 14 days before them are the targets), anchors = the items of the
user's last training visit (30 minutes before their newest training event, as the last_visit source),
rows compacted as the table is (KEEP_NEIGHBOURS best per item, weights under MIN_WEIGHT dropped). Any
database with Online Retail imported, e.g. the ranker's:
  DATABASE_URL="postgresql://postgres@/recsys_bench_twotower?host=$PWD/var/pg" \
    nice .venv/bin/python -m bench.covisitation --sweep-windows 7:1 30:7 90:30 365:0
(window days : half-life days, 0 = no decay)
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time

import numpy as np

from bench.harness import database_url

os.environ.setdefault("DATABASE_URL", database_url("recsys_bench_covisit"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "recsys_project.settings")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

DAY = 86400.0
K = 10


def _setup() -> None:
    from bench.harness import django_setup

    django_setup()
    from django.db import connection

    if not connection.settings_dict["NAME"].startswith("recsys_bench_"):
        sys.exit("refusing to run outside a recsys_bench_* database")


def _targets(data, split, which: str) -> tuple[list[str], dict[str, int], dict[str, list[int]]]:
    """Evaluated users, their target (validation or test item) and their last training visit's items."""
    from training.evaluation import _by_user

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
    from training import metrics

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


VISIT_SECONDS = 1800.0  # the last_visit source's visit: events within 30 minutes of the newest one
SWEEP_CHUNK = 20_000_000  # event pairs per chunk: bounds memory when a year's window holds ~10^8 pairs


def _sweep_targets(data, split) -> tuple[list[str], dict[str, set[int]], dict[str, list[int]]]:
    """Evaluated users (non-empty active targets), their target items and their last visit's items."""
    from training.evaluation import _by_user

    train = np.zeros(len(data.ts), dtype=bool)
    train[split.train] = True
    by_user = _by_user(data)
    targets, anchors = {}, {}
    for user in split.users:
        wanted = {int(i) for i in split.test[user] if data.active[int(i)]}
        mine = by_user[user][train[by_user[user]]]
        if not wanted or not len(mine):
            continue
        newest = data.ts[mine].max()
        visit = mine[data.ts[mine] >= newest - VISIT_SECONDS]
        targets[user], anchors[user] = wanted, sorted({int(i) for i in data.item_idx[visit]})[:50]
    return sorted(targets), targets, anchors


def _compact(scores: np.ndarray, raw: np.ndarray, keep: int, min_weight: float) -> np.ndarray:
    """The table after compaction: each row's `keep` best scores, raw weights under min_weight gone."""
    out = np.where(raw >= min_weight, scores, 0.0)
    if out.shape[1] > keep:
        cut = np.partition(out, -keep, axis=1)[:, -keep][:, None]
        out = np.where(out >= cut, out, 0.0)
    return out


def _sweep_score(m: np.ndarray, pop: np.ndarray, *, data, split, users, targets, anchors) -> float:
    """Mean NDCG@10 of the users' summed anchor rows, training items removed."""
    from training import metrics

    tie = pop / (pop.max() + 1.0) * 1e-6
    ndcg = []
    for user in users:
        s = m[anchors[user]].sum(axis=0) + tie
        s[~data.active] = -np.inf
        s[split.history[user]] = -np.inf
        top = np.argpartition(-s, K)[:K]
        top = top[np.argsort(-s[top], kind="stable")]
        ndcg.append(metrics.ndcg_at_k(list(top), targets[user], K))
    return float(np.mean(ndcg))


def sweep_windows(configs: list[tuple[float, float]], keeps: list[int]) -> None:
    """Validation NDCG@10 of "bought" co-visitation per (window, half-life), on both protocols."""
    from bench.ranker import validation_data
    from recommendations import covisitation as cv
    from training import evaluation

    full = evaluation.events_load()
    for protocol in ("leave-one-out", "temporal"):
        data = validation_data(full, protocol)
        split = evaluation.split_build(data, protocol=protocol)
        n = len(data.item_pks)
        tr = split.train
        actors, items, ts, types = data.user_ids[tr], data.item_idx[tr], data.ts[tr], data.event_type[tr]
        users, targets, anchors = _sweep_targets(data, split)
        n_actors = len(set(actors.tolist()))

        def score(m: np.ndarray, pop: np.ndarray) -> float:
            return _sweep_score(m, pop, data=data, split=split, users=users, targets=targets, anchors=anchors)  # noqa: B023

        stats = evaluation.training_stats_build(data, split)
        pop_ref = stats.popularity.astype(np.float64)
        ref = stats.cooccurrence.astype(np.float64).toarray()
        np.fill_diagonal(ref, 0.0)
        ref /= np.sqrt(np.maximum(pop_ref, 1e-12))[None, :]
        print(
            f"\n{protocol} validation: {len(users):,} users, {len(ts):,} training events, {n:,} items; "
            f"baseline cooccurrence_visit (all-time distinct users / sqrt(pop)) NDCG@10 {score(ref, pop_ref):.4f}",
            flush=True,
        )
        counts = stats.cooccurrence.astype(np.float64).toarray()
        for keep in keeps:
            print(
                f"distinct-actor counts (kind 'shoppers') compacted to {keep:4d} per item "
                f"NDCG@10 {score(_compact(ref, counts, keep, 0.5), pop_ref):.4f}",
                flush=True,
            )
        if not configs:
            continue
        cv.WINDOW_SECONDS = max(w for w, _ in configs)
        t0 = time.perf_counter()
        left, right = cv.event_pairs(actors=actors, ts=ts)
        print(
            f"{len(left):,} event pairs within {cv.WINDOW_SECONDS / DAY:g} d ({time.perf_counter() - t0:.0f} s)"
        )
        pop = cv.item_popularity(kind="bought", items=items, event_types=types, n_items=n)
        for window, half_life in configs:
            cv.WINDOW_SECONDS, cv.HALF_LIFE_SECONDS = window, half_life
            raw = np.zeros(n * n, dtype=np.float64)
            for lo in range(0, len(left), SWEEP_CHUNK):
                rows, cols, vals = cv.pair_contributions(
                    kind="bought",
                    items=items,
                    ts=ts,
                    event_types=types,
                    left=left[lo : lo + SWEEP_CHUNK],
                    right=right[lo : lo + SWEEP_CHUNK],
                )
                raw += np.bincount(rows * n + cols, weights=vals, minlength=n * n)
            raw = raw.reshape(n, n)
            scores = raw / np.sqrt(np.maximum(pop, 1e-12))[None, :]
            full_nnz = int((raw > 0).sum())
            label = f"window {window / DAY:5g} d  half-life {'none' if half_life > 1e11 else f'{half_life / DAY:g} d':>6}"
            print(
                f"{label}  NDCG@10 uncompacted {score(scores, pop):.4f}  "
                f"item-pair entries {full_nnz:,} ({full_nnz / n_actors:,.0f} per training actor)",
                flush=True,
            )
            for keep in keeps:
                compact = _compact(scores, raw, keep, cv.MIN_WEIGHT)
                print(
                    f"{label}  NDCG@10 compacted to {keep:4d} per item {score(compact, pop):.4f}  "
                    f"kept {int((compact > 0).sum()):,} entries",
                    flush=True,
                )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="a smaller grid")
    parser.add_argument("--reference-only", action="store_true", help="only the distinct-actor reference")
    parser.add_argument(
        "--sweep-windows",
        nargs="+",
        metavar="DAYS:HALF_LIFE_DAYS",
        help="validation only, both protocols: window:half-life in days (half-life 0 = no decay)",
    )
    parser.add_argument(
        "--keep",
        nargs="+",
        type=int,
        default=None,
        help="with --sweep-windows: neighbours kept per item by compaction (default KEEP_NEIGHBOURS)",
    )
    args = parser.parse_args()
    _setup()
    if args.sweep_windows:
        configs = []
        for spec in args.sweep_windows:
            window, half_life = (float(x) for x in spec.split(":"))
            configs.append((window * DAY, half_life * DAY if half_life > 0 else 1e12))
        from recommendations.covisitation import KEEP_NEIGHBOURS

        sweep_windows(configs, args.keep or [KEEP_NEIGHBOURS])
        return
    from recommendations import covisitation as cv
    from training import evaluation

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

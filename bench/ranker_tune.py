"""Ranker settings side by side on the VALIDATION targets, cheaply: the candidates and features of every
validation user and of the ranker's training users are built once (through the serving code, as
`training.ranker.training` does) and cached; each variant then only trains LightGBM and re-orders
the cached candidates. Prints NDCG@10 of each variant's raw order against the best single source's, with a
paired bootstrap interval over the users, and the load average.

This is a tuning tool: it never reads the test targets (`bench/ranker.py --validation`'s data, the test
item removed). Settings chosen here are then checked once with `bench/ranker.py` on the test targets.

  .venv/bin/python -m bench.ranker_tune --protocol leave-one-out --ranker-users 2500 \
      --variants '{"current": {}, "xendcg": {"objective": "rank_xendcg"}}'

A variant's "fit" picks the procedure (`cv`: `ranker_train`'s 3-fold cross-validation and refit;
`holdout` / `holdout_refit`: `training.ranker.training.ranker_train_holdout`) and "negatives" samples each
training group's negatives (`rows_sample`, seeded by "sample_seed", default the seed), "groups" keeps a seeded sample of that many training groups
(as fewer training users would); the rest are LightGBM parameters. Every variant after the first
is also compared with the first, paired over the validation users.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from bench import ranker as bench_ranker


def _groups_build(data, rows, protocol: str, max_users: int, seed: int, cache: Path, **fit):
    from training.ranker.training import TrainingRows, training_rows_build

    if cache.exists():
        z = np.load(cache)
        return TrainingRows(z["features"], z["labels"], z["groups"], [], int(z["skipped"]))
    vectors = _vectors(data)
    out = training_rows_build(
        data, rows, vectors, protocol=protocol, max_users=max_users, seed=seed, progress=True, **fit
    )
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(
        cache, features=out.features, labels=out.labels, groups=out.groups, skipped=out.skipped_no_positive
    )
    return out


_VECTORS: dict[int, np.ndarray] = {}


def _vectors(data) -> np.ndarray:
    from training.evaluation import item_vectors_load

    if id(data) not in _VECTORS:
        _VECTORS[id(data)] = item_vectors_load(data)
    return _VECTORS[id(data)]


def _groups_subset(rows, n: int | None, seed: int):
    """A seeded sample of `n` of the training groups (fewer training users), in their order."""
    from training.ranker.training import TrainingRows

    if n is None or n >= len(rows.groups):
        return rows
    chosen = np.sort(np.random.default_rng(seed).choice(len(rows.groups), n, replace=False))
    starts = np.r_[0, np.cumsum(rows.groups)[:-1]]
    at = np.concatenate([np.arange(starts[g], starts[g] + rows.groups[g]) for g in chosen])
    return TrainingRows(rows.features[at], rows.labels[at], rows.groups[chosen], [], rows.skipped_no_positive)


def ndcg_at_10(scores: np.ndarray, labels: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Per group: NDCG@10 of the order by score (ties broken by position), one or more positives."""
    out = np.zeros(len(groups))
    start = 0
    discount = 1.0 / np.log2(np.arange(2, 12))
    for g, size in enumerate(groups):
        s, y = scores[start : start + size], labels[start : start + size]
        order = np.lexsort((np.arange(size), -s))[:10]
        dcg = float((y[order] > 0) @ discount[: len(order)])
        ideal = float(discount[: min(int((y > 0).sum()), 10)].sum())
        out[g] = dcg / ideal if ideal else 0.0
        start += size
    return out


def bootstrap(diff: np.ndarray, resamples: int = 2000) -> tuple[float, float]:
    rng = np.random.default_rng(0)
    means = [diff[rng.integers(0, len(diff), len(diff))].mean() for _ in range(resamples)]
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--protocol", default="leave-one-out")
    parser.add_argument("--ranker-users", type=int, default=2500)
    parser.add_argument("--eval-users", type=int, default=100000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--variants", default='{"current": {}}', help="name -> LightGBM params, as JSON")
    parser.add_argument(
        "--loo-positives",
        nargs="+",
        default=["last"],
        help="training labels (leave-one-out): last, after_history",
    )
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.1f}")
    bench_ranker._setup()
    from recommendations.ranker.features import feature_names
    from recommendations.ranker.model import ranker_train
    from training import evaluation
    from training.ranker.training import DEFAULT_SOURCES, ranker_train_holdout, rows_sample

    data = bench_ranker.validation_data(evaluation.events_load(), args.protocol)
    split = evaluation.split_build(data, protocol=args.protocol)
    everything = np.arange(len(data.ts))
    tag = f"{args.protocol}-v{len(data.ts)}"
    cache = bench_ranker.OUT / "tune"
    started = time.perf_counter()
    # the validation users' groups: the split of the validation data, built like training rows
    evaluated = _groups_build(
        data, everything, args.protocol, args.eval_users, 0, cache / f"eval-{tag}-{args.eval_users}.npz"
    )
    users_total = len(evaluated.groups) + evaluated.skipped_no_positive
    names = feature_names(DEFAULT_SOURCES)
    baselines = {}
    for source in DEFAULT_SOURCES:
        col = evaluated.features[:, names.index(f"{source}_score")]
        baselines[f"src_{source}"] = ndcg_at_10(
            np.nan_to_num(col, nan=-np.inf), evaluated.labels, evaluated.groups
        )
    best = max(baselines, key=lambda m: baselines[m].sum())
    print(
        f"validation users: {users_total} ({len(evaluated.groups)} with the target among the candidates); "
        f"features built in {time.perf_counter() - started:.0f} s"
    )
    for m, v in sorted(baselines.items(), key=lambda kv: -kv[1].sum()):
        print(f"  {m:<24} NDCG@10 {v.sum() / users_total:.4f}")
    variants = json.loads(args.variants)
    for seed in args.seeds:
        for positives in args.loo_positives:
            train = _groups_build(
                data, split.train, args.protocol, args.ranker_users, seed,
                cache / f"train-{tag}-{args.ranker_users}-s{seed}{'' if positives == 'last' else '-' + positives}.npz",
                loo_positives=positives,
            )  # fmt: skip
            print(
                f"seed {seed}, positives {positives}: {len(train.groups)} training groups "
                f"({train.skipped_no_positive} users without a positive, {int((train.labels > 0).sum())} positives)"
            )
            per_variant: dict[str, np.ndarray] = {}
            for name, variant in variants.items():
                params = dict(variant)
                fit, negatives = params.pop("fit", "cv"), params.pop("negatives", None)
                subset = _groups_subset(train, params.pop("groups", None), seed)
                rows = rows_sample(subset, negatives=negatives, seed=params.pop("sample_seed", seed))
                t0, c0 = time.perf_counter(), time.process_time()
                if fit == "cv":
                    ranker = ranker_train(
                        rows.features,
                        rows.labels,
                        rows.groups,
                        sources=DEFAULT_SOURCES,
                        seed=seed,
                        params=params,
                    )
                else:
                    ranker = ranker_train_holdout(
                        rows.features, rows.labels, rows.groups, sources=DEFAULT_SOURCES, seed=seed,
                        params=params, refit=fit == "holdout_refit",
                    )  # fmt: skip
                fit_cpu = time.process_time() - c0
                got = ndcg_at_10(ranker.predict(evaluated.features), evaluated.labels, evaluated.groups)
                diff = np.concatenate([got - baselines[best], np.zeros(evaluated.skipped_no_positive)])
                lo, hi = bootstrap(diff)
                print(
                    f"  {name:<24} NDCG@10 {got.sum() / users_total:.4f}  vs {best} {diff.mean():+.4f} "
                    f"[{lo:+.4f}, {hi:+.4f}]  rounds {ranker.info['rounds']}  {time.perf_counter() - t0:.0f} s "
                    f"({fit_cpu:.0f} CPU s, {len(rows.labels)} rows)"
                )
                per_variant[name] = got
            # each variant against the first, paired over the same users
            first = next(iter(per_variant))
            for name, got in list(per_variant.items())[1:]:
                diff = np.concatenate([got - per_variant[first], np.zeros(evaluated.skipped_no_positive)])
                lo, hi = bootstrap(diff)
                print(f"  {name} - {first}: {diff.mean():+.4f} [{lo:+.4f}, {hi:+.4f}]")
    print(f"load average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()

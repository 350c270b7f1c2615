"""Training rows for the ranker, through the serving code itself (no train/serve skew).

Next-item targets from an inner split of the training events, of the same kind as the evaluation
protocol: `temporal`, a cut `horizon_days` before the last training event, the labels the items each user
went on to have after it; `leave-one-out`, each user's history up to their last two new items, the
labels every item they had after it (LOO_POSITIVES). Everything the sources and features read (popularity, co-visitation, each user's history and
vector) is built from the inner training events only. The popularity table is replaced inside a
transaction that is rolled back (as the served recommender's evaluation does), co-visitation is read from
matrices built from the same events, and each user's candidates and features come from
`sources.candidates_gather` and `features.context_features`, the functions serving calls.

No leakage: only `train_rows` are read (the outer split's training events); whatever happened after them
(the test period) changes nothing.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import lightgbm as lgb
import numpy as np
from django.conf import settings
from django.db import connection, transaction
from scipy import sparse
from tqdm import tqdm

from interactions.selectors import event_weight
from recommendations import covisitation as covis
from recommendations import selectors, services, sources
from recommendations.covisitation import (
    KINDS,
    covisitation_matrices,
    covisitation_normalise,
    covisitation_popularity,
)
from recommendations.ranker import model as ranker_model
from recommendations.ranker.features import context_features, feature_names
from recommendations.ranker.model import Ranker, ranker_train
from recommendations.rerank.pipeline import RerankConfig
from recommendations.retrieval.base import HardFilters

# The sources a ranker is trained with (two_tower joins only with a tower trained before the inner cut;
# repeat only where a profile shows bought items again: neither on the default path yet).
DEFAULT_SOURCES = (
    "bought_together",
    "viewed_together",
    "last_visit",
    "content_recent",
    "user_vector",
    "trending",
)
HORIZON_DAYS = 14.0
MAX_USERS = 2500
# Leave-one-out labels: "last" (the held-out item alone) or "after_history" (every item the user had after
# their history: the held-out item, the validation item and the rest of that last basket). Chosen on the
# validation targets (bench/ranker_tune.py, Online Retail, all 2,615 validation users, seed 0, 2,500
# training users): "last" gave 747 groups with one positive each and NDCG@10 0.0230 against the best
# source's 0.0262; "after_history" gave 1,653 groups (11,676 positives) and 0.0293 (+0.0031, 95% paired
# bootstrap [-0.0009, +0.0071]). The registry's ranker is trained this way (its gate is leave-one-out).
LOO_POSITIVES = "after_history"
# LightGBM's fit (`ranker_train_holdout`): the share of the training users whose groups stop the boosting
# early instead of a K-fold cross-validation and a refit, and how many negatives each group keeps (every
# positive stays; None keeps them all). Chosen on the validation targets (bench/ranker_tune.py): see
# docs/ranker.md.
HOLDOUT_SHARE = 0.2
NEGATIVES_PER_GROUP: int | None = 50
# LightGBM's threads while training (serving predicts on one, `Ranker.predict`). With `deterministic` the
# trees are the same whatever the number (tests/training/test_ranker_fit.py), only the wall time changes:
# one, as the rest of the command runs, on a box whose other core serves; 2 on an idle machine halves the
# fit's wall time at a little more CPU.
TRAIN_THREADS = 1


@dataclass
class TrainingRows:
    features: np.ndarray
    labels: np.ndarray
    groups: np.ndarray
    users: list[str] = field(default_factory=list)
    skipped_no_positive: int = 0


class _Rollback(Exception):
    pass


def popularity_replace(stream, rows: np.ndarray, *, now_ts: float) -> None:
    """The ItemPopularity table as `item_popularity_refresh` would have left it at `now_ts`, from these
    events only (the caller rolls the transaction back)."""
    ts = stream.ts[rows]
    window = (ts > now_ts - services.POPULARITY_WINDOW_DAYS * 86400.0) & (ts <= now_ts)
    r = rows[window]
    weights = np.array([event_weight(t) for t in stream.event_type[r]])
    decay = np.power(0.5, (now_ts - stream.ts[r]) / 86400.0 / services.POPULARITY_HALF_LIFE_DAYS)
    n_items = len(stream.item_pks)
    score = np.bincount(stream.item_idx[r], weights=weights * decay, minlength=n_items)
    count = np.bincount(stream.item_idx[r], minlength=n_items)
    present = np.flatnonzero(count > 0)
    with connection.cursor() as cur:
        cur.execute("DELETE FROM recommendations_itempopularity")
        cur.execute(
            """
            INSERT INTO recommendations_itempopularity
                (item_id, score, interaction_count, created_at, updated_at)
            SELECT pk, s, n, now(), now()
            FROM unnest(%s::bigint[], %s::float8[], %s::int[]) AS t(pk, s, n)
            JOIN catalog_item i ON i.id = t.pk
            """,
            [
                [int(p) for p in stream.item_pks[present]],
                [float(x) for x in score[present]],
                [int(x) for x in count[present]],
            ],
        )


# Benchmarks set this to keep the (deterministic) matrices of a set of events between runs: the full
# recompute takes minutes on Online Retail, and every seed of a protocol needs the same two.
MATRIX_CACHE_DIR: Path | None = None


def covisitation_neighbours_for(stream, rows: np.ndarray) -> sources.MatrixNeighbours:
    """Co-visitation from these events only, with the table's rules and normalisation."""
    rows = np.sort(np.asarray(rows, dtype=np.int64))
    path = None
    if MATRIX_CACHE_DIR is not None:
        digest = hashlib.sha256()
        rules = (
            covis.KINDS,
            covis.WINDOW_SECONDS,
            covis.HALF_LIFE_SECONDS,
            covis.BACKWARD_FACTOR,
            covis.NEIGHBOUR_EXPONENT,
        )
        digest.update(
            repr((rules, covis.ANCHOR_EXPONENT, sorted(settings.RECSYS_EVENT_WEIGHTS.items()))).encode()
        )
        for part in (rows, stream.item_idx[rows], stream.ts[rows], stream.item_pks):
            digest.update(np.ascontiguousarray(part).tobytes())
        path = Path(MATRIX_CACHE_DIR) / f"covis-{digest.hexdigest()[:20]}.npz"
    if path is not None and path.exists():
        loaded = np.load(path)
        normalised = {kind: sparse.csr_matrix((loaded[f"{kind}_data"], loaded[f"{kind}_indices"],
                                               loaded[f"{kind}_indptr"]), shape=tuple(loaded["shape"]))
                      for kind in KINDS}  # fmt: skip
        return sources.MatrixNeighbours(normalised, stream.item_pks, stream.active)
    raw = covisitation_matrices(
        actors=stream.user_ids[rows],
        items=stream.item_idx[rows],
        ts=stream.ts[rows],
        event_types=stream.event_type[rows],
        n_items=len(stream.item_pks),
    )
    normalised = {kind: covisitation_normalise(m, covisitation_popularity(m)) for kind, m in raw.items()}
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {"shape": np.array(normalised[KINDS[0]].shape)}
        for kind, m in normalised.items():
            arrays.update({f"{kind}_data": m.data, f"{kind}_indices": m.indices, f"{kind}_indptr": m.indptr})
        np.savez(path, **arrays)
    return sources.MatrixNeighbours(normalised, stream.item_pks, stream.active)


def user_history(stream, rows: np.ndarray) -> selectors.History:
    """A user's History from their events (time order), as `selectors.user_context` reads it."""
    newest = rows[::-1][: selectors.HISTORY_EVENTS]
    return selectors._history(
        [(int(stream.item_pks[stream.item_idx[i]]), str(stream.event_type[i])) for i in newest],
        [float(stream.ts[i]) for i in newest],
    )


def user_vector(stream, rows: np.ndarray, vectors: np.ndarray) -> np.ndarray | None:
    """The stored user vector's formula (`interactions` worker / evaluation's user_vectors_build)."""
    if not len(rows):
        return None
    half_life = settings.RECSYS_USER_HALF_LIFE_DAYS * 86400.0
    ts = stream.ts[rows]
    decay = np.power(0.5, (ts.max() - ts) / half_life) if half_life > 0 else np.ones(len(ts))
    w = np.array([event_weight(t) for t in stream.event_type[rows]]) * decay
    v = (vectors[stream.item_idx[rows]] * w[:, None]).sum(axis=0)
    n = float(np.linalg.norm(v))
    return (v / n).astype(np.float32) if n > 0 else None


def user_filters(history: selectors.History, *, surface: str = "") -> HardFilters:
    """The filters `scenarios._ranked` gives the sources for a user: the profile's stock rule, and what the
    re-ranking would hide anyway (bought / seen, as the profile says for the user scenario)."""
    config = RerankConfig.from_profile(selectors.profile_for_surface(surface=surface))
    hidden: set[int] = set()
    if "user" in config.exclude_bought_in:
        hidden |= history.bought_pks
    if "user" in config.exclude_seen_in:
        hidden |= history.seen_pks
    return HardFilters(in_stock_only=config.in_stock_only, exclude_item_pks=frozenset(hidden))


def training_rows_build(
    stream,
    train_rows: np.ndarray,
    vectors: np.ndarray,
    *,
    protocol: str = "temporal",
    names: tuple[str, ...] = DEFAULT_SOURCES,
    horizon_days: float = HORIZON_DAYS,
    max_users: int = MAX_USERS,
    seed: int = 0,
    progress: bool = False,
    loo_positives: str = LOO_POSITIVES,
    negatives: int | None = None,
) -> TrainingRows:
    """Rows from an inner split of the training events, of the same kind as the evaluation protocol
    (`training.evaluation.split_build` on those events alone): `temporal`, a cut `horizon_days` before
    the last training event and the items of the days after it; `leave-one-out`, the history before each
    user's last two new items, and as labels every item after it (or the last item alone: `loo_positives`).
    `negatives`: each group keeps every positive and that many of its negatives (`rows_sample`'s rows), and
    only those rows' features are computed."""
    from training.evaluation import EventData, split_build

    train_rows = np.sort(np.asarray(train_rows, dtype=np.int64))
    sub = EventData(
        user_ids=stream.user_ids[train_rows],
        item_idx=stream.item_idx[train_rows],
        ts=stream.ts[train_rows],
        event_type=stream.event_type[train_rows],
        item_pks=stream.item_pks,
        active=stream.active,
    )
    inner = split_build(sub, protocol=protocol, test_days=horizon_days)
    before = np.asarray(inner.train, dtype=np.int64)
    by_user: dict[str, list[int]] = {}
    for i in before:
        by_user.setdefault(str(sub.user_ids[i]), []).append(int(i))
    targets = {u: {int(sub.item_pks[i]) for i in inner.test[u]} for u in inner.users if u in by_user}
    if protocol == "leave-one-out" and loo_positives == "after_history":
        # every item the user went on to have after their history (the held-out item, the validation
        # item and whatever else came at or after it), not the held-out item alone: the same labels as a
        # temporal cut per user, more positives per group, and no event from before the history's end
        held = np.ones(len(sub.ts), dtype=bool)
        held[before] = False
        for i in np.flatnonzero(held):
            user = str(sub.user_ids[i])
            if user in targets:
                targets[user].add(int(sub.item_pks[sub.item_idx[i]]))
    users = sorted(targets)
    rng = np.random.default_rng(seed)
    if len(users) > max_users:
        users = sorted(rng.choice(users, size=max_users, replace=False).tolist())
    stream = sub
    # temporal: everything is as of the inner cut; leave-one-out: the table as of the last kept event
    cut_ts = (
        inner.cut_ts if inner.cut_ts is not None else (float(sub.ts[before].max()) if len(before) else 0.0)
    )
    out_x, out_y, groups, kept = [], [], [], []
    skipped = 0
    neighbours = covisitation_neighbours_for(stream, before)
    dim = vectors.shape[1]
    sample_rng = np.random.default_rng(seed)  # rows_sample's draws, group by group
    try:
        with transaction.atomic():
            popularity_replace(stream, before, now_ts=cut_ts)
            selectors.serving_config_clear()
            sources.covisitation_in_memory(neighbours)
            for user in tqdm(users, desc="ranker rows", unit="user", disable=not progress, leave=False):
                rows = np.array(by_user[user], dtype=np.int64)
                history = user_history(stream, rows)
                positives = targets[user] - history.bought_pks - history.seen_pks
                if not positives:
                    skipped += 1
                    continue
                now_ts = float(stream.ts[rows].max()) + 1.0 if protocol == "leave-one-out" else cut_ts
                context = sources.SourceContext(
                    recent=tuple(pk for pk, _ in history.recent),
                    visit=tuple(history.last_visit),
                    bought=frozenset(history.bought_pks),
                    now=datetime.fromtimestamp(now_ts, tz=UTC),
                    vector=user_vector(stream, rows, vectors),
                )
                filters = user_filters(history)
                context.memo["filters"] = filters
                gathered = sources.candidates_gather(context, names=names, filters=filters)
                labels = np.array([int(pk) in positives for pk in gathered.pks], dtype=np.float32)
                if not labels.any():
                    skipped += 1
                    continue
                if negatives is not None:
                    # a candidate's features do not depend on the others': those of the rows kept are
                    # the rows of the whole group's features
                    chosen = _group_sample(labels, negatives, sample_rng)
                    labels = labels[chosen]
                    gathered = replace(
                        gathered,
                        pks=gathered.pks[chosen],
                        scores=gathered.scores[chosen],
                        ranks=gathered.ranks[chosen],
                    )
                out_x.append(context_features(context, gathered, now_ts=now_ts, dim=dim))
                out_y.append(labels)
                groups.append(len(labels))
                kept.append(user)
            raise _Rollback
    except _Rollback:
        pass
    finally:
        sources.covisitation_in_memory(None)
        selectors.serving_config_clear()
    if not groups:
        return TrainingRows(np.zeros((0, 0), np.float32), np.zeros(0), np.zeros(0, np.int64), [], skipped)
    return TrainingRows(
        np.vstack(out_x), np.concatenate(out_y), np.array(groups, dtype=np.int64), kept, skipped
    )


def _group_sample(labels: np.ndarray, negatives: int, rng: np.random.Generator) -> np.ndarray:
    """The rows of one group kept: every positive and at most `negatives` negatives, uniformly (in the
    group's order)."""
    negative = np.flatnonzero(labels <= 0)
    if len(negative) <= negatives:
        return np.arange(len(labels))
    chosen = rng.choice(negative, negatives, replace=False)
    return np.sort(np.concatenate([np.flatnonzero(labels > 0), chosen]))


def rows_sample(rows: TrainingRows, *, negatives: int | None, seed: int = 0) -> TrainingRows:
    """Every positive of each group and at most `negatives` of its negatives, a seeded uniform sample (the
    group's order kept): the same rows as `training_rows_build(..., negatives=negatives, seed=seed)`."""
    if negatives is None or not len(rows.groups):
        return rows
    rng = np.random.default_rng(seed)
    keep: list[np.ndarray] = []
    sizes = np.zeros(len(rows.groups), dtype=np.int64)
    start = 0
    for g, size in enumerate(rows.groups):
        kept = _group_sample(rows.labels[start : start + size], negatives, rng)
        keep.append(start + kept)
        sizes[g] = len(kept)
        start += size
    at = np.concatenate(keep)
    return TrainingRows(rows.features[at], rows.labels[at], sizes, rows.users, rows.skipped_no_positive)


def ranker_train_holdout(
    features: np.ndarray,
    labels: np.ndarray,
    groups: np.ndarray,
    *,
    sources: tuple[str, ...],
    seed: int = 0,
    params: dict | None = None,
    holdout: float = HOLDOUT_SHARE,
    refit: bool = False,
) -> Ranker:
    """One LightGBM fit on the groups of (1 - `holdout`) of the users, boosting stopped when the other
    users' NDCG@10 has not risen for EARLY_STOPPING rounds (kept to at least MIN_ROUNDS, as the
    cross-validation's pick is), instead of `ranker_train`'s K-fold cross-validation and refit (which
    costs about three times the trees). `refit`: then train on every group with that many rounds."""
    groups = np.asarray(groups, dtype=np.int64)
    if len(groups) < ranker_model.MIN_CV_GROUPS or not 0.0 < holdout < 1.0:
        return ranker_train(features, labels, groups, sources=sources, seed=seed, params=params)
    names = feature_names(sources)
    merged = {**ranker_model.PARAMS, "num_threads": TRAIN_THREADS, **(params or {}), "seed": seed}
    held = np.random.default_rng(seed).permutation(len(groups)) < round(holdout * len(groups))
    row_held = np.repeat(held, groups)
    fit = lgb.Dataset(
        features[~row_held], labels[~row_held], group=groups[~held], feature_name=names, free_raw_data=True
    )
    valid = lgb.Dataset(features[row_held], labels[row_held], group=groups[held], reference=fit)
    best = {"score": -np.inf, "round": 0}

    def stop(env) -> None:
        score = env.evaluation_result_list[0][2]
        if score > best["score"]:
            best.update(score=score, round=env.iteration + 1)
        done = env.iteration + 1
        if done >= ranker_model.MIN_ROUNDS and done - best["round"] >= ranker_model.EARLY_STOPPING:
            raise lgb.callback.EarlyStopException(best["round"] - 1, env.evaluation_result_list)

    stop.order = 30  # type: ignore[attr-defined]  # LightGBM runs callbacks by this
    # keep_training_booster: every tree run (lgb.train would otherwise cut the model at the best round,
    # below the floor)
    booster = lgb.train(
        merged,
        fit,
        num_boost_round=ranker_model.MAX_ROUNDS,
        valid_sets=[valid],
        callbacks=[stop],
        keep_training_booster=True,
    )
    # LightGBM also stops by itself when no tree can split any more: then every tree it made is kept
    rounds = min(max(best["round"], ranker_model.MIN_ROUNDS), booster.current_iteration())
    if refit:
        everything = lgb.Dataset(features, labels, group=groups, feature_name=names)
        booster = lgb.train(merged, everything, num_boost_round=rounds)
    else:
        booster = lgb.Booster(model_str=booster.model_to_string(num_iteration=rounds))
    info = {
        "rounds": rounds,
        "groups": int(len(groups)),
        "rows": int(len(labels)),
        "positives": int((labels > 0).sum()),
        "holdout_groups": int(held.sum()),
        "holdout_ndcg@10": float(best["score"]),
        "refit": refit,
        "params": {k: v for k, v in merged.items() if k != "eval_at"},
    }
    return Ranker(booster=booster, sources=tuple(sources), info=info)


def ranker_fit(
    stream,
    train_rows: np.ndarray,
    vectors: np.ndarray,
    *,
    protocol: str = "temporal",
    names: tuple[str, ...] = DEFAULT_SOURCES,
    horizon_days: float = HORIZON_DAYS,
    max_users: int = MAX_USERS,
    seed: int = 0,
    progress: bool = False,
) -> Ranker:
    """A ranker from these training events (an inner split of the `protocol`'s kind, see above)."""
    started, started_cpu = time.perf_counter(), time.process_time()
    rows = training_rows_build(
        stream,
        train_rows,
        vectors,
        protocol=protocol,
        names=names,
        horizon_days=horizon_days,
        max_users=max_users,
        seed=seed,
        progress=progress,
        negatives=NEGATIVES_PER_GROUP,
    )
    if not len(rows.groups):
        raise ValueError("no training rows: no user has a next item among the candidates")
    built, built_cpu = time.perf_counter(), time.process_time()
    ranker = ranker_train_holdout(rows.features, rows.labels, rows.groups, sources=names, seed=seed)
    ranker.info.update(
        protocol=protocol,
        users=len(rows.users),
        skipped_no_positive=rows.skipped_no_positive,
        negatives_per_group=NEGATIVES_PER_GROUP,
        rows_seconds=round(built - started, 1),
        fit_seconds=round(time.perf_counter() - built, 1),
        rows_cpu_seconds=round(built_cpu - started_cpu, 1),
        fit_cpu_seconds=round(time.process_time() - built_cpu, 1),
    )
    return ranker

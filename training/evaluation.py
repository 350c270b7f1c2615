"""Offline evaluation over the events in the database: the training app's gates, and `manage.py evaluate`
(analytics' command, which stores each result as an EvaluationRun).

Protocols (`split_build`):
- `leave-one-out`: each user's interactions, reduced to distinct items in the order first met; the last
  item is the test item, the second-to-last the validation item, and the user's events before the
  validation item (minus those two items) are the training events. Users with fewer than three distinct
  items are not evaluated, and all their events are training.
  Anonymous sessions (events without a user_id) count in training but are not evaluated.
- `temporal`: one global cut `test_days` before the last event; events before it are training, a user's
  test items are the items they interacted with in the next `test_days` days that are not in their own
  training history. Users without training history are not evaluated.

No leakage: every model input (popularity, co-occurrence, the user vectors, the "last item") is built from
the training events only; test and validation events are held out of all of them.

Ranking is over the whole active catalog (no sampled negatives), with the user's training items removed
(as serving removes what a user already has). Metrics: Recall, NDCG and HitRate at each K, MRR over the
top max(K), coverage@K, diversity@K (mean pairwise cosine distance of the top K) and the mean training
popularity of what was recommended.

`evaluation_run` computes and returns; it stores nothing. The apps above keep the runs: analytics' callers
save a result themselves (`analytics.services.evaluation_run_save`), and a gate here passes its result to
`evaluation_record`, which hands it over through the `evaluation_finished` signal (training imports nothing
from the apps above it).
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from django.conf import settings
from scipy import sparse
from tqdm import tqdm

from catalog.selectors import item_vectors_iter, items_active_fingerprint, items_active_pks
from interactions.selectors import event_weight, events_fingerprint, events_for_training
from training import metrics
from training.signals import evaluation_finished

PROTOCOLS = ("leave-one-out", "temporal")
DEFAULT_KS = (10, 20, 50)
BASELINES = ("popularity", "cooccurrence", "content", "user_vector")
# Events without a user_id belong to their session: it counts as an actor in training (popularity,
# co-occurrence), but only identified users are evaluated.
SESSION_ACTOR = "s:"
# Users are scored in chunks so the dense score block stays near this many floats (~80 MB as float32):
# 3,665 items x 5,000 users per chunk on Online Retail takes ~0.1 s per method to score and rank.
SCORE_BLOCK_FLOATS = 20_000_000


@dataclass
class EventData:
    """The event stream as arrays, items as indices into `item_pks`."""

    user_ids: np.ndarray  # object (str)
    item_idx: np.ndarray  # int64
    ts: np.ndarray  # float64, epoch seconds
    event_type: np.ndarray  # object (str)
    item_pks: np.ndarray  # int64, every item that appears, then active items not in events
    active: np.ndarray  # bool per item index


@dataclass
class Split:
    protocol: str
    train: np.ndarray  # indices into EventData arrays
    users: list[str]  # evaluated users
    test: dict[str, set[int]]  # user -> relevant item indices
    history: dict[str, list[int]] = field(default_factory=dict)  # user -> training items, time order
    cut_ts: float | None = None
    held_out: int = 0  # events held out of training (test + validation)


def events_load() -> EventData:
    """Events linked to a catalog item (user_id or session as the actor), oldest first."""
    rows = events_for_training(session_prefix=SESSION_ACTOR)
    active_pks = items_active_pks()
    event_items = np.array([r[1] for r in rows], dtype=np.int64)
    all_pks = np.unique(np.concatenate([event_items, np.array(active_pks, dtype=np.int64)]))
    index = {int(pk): i for i, pk in enumerate(all_pks)}
    active = np.zeros(len(all_pks), dtype=bool)
    active[[index[pk] for pk in active_pks]] = True
    return EventData(
        user_ids=np.array([r[0] for r in rows], dtype=object),
        item_idx=np.array([index[int(pk)] for pk in event_items], dtype=np.int64),
        ts=np.array([r[2] for r in rows], dtype=np.float64),
        event_type=np.array([r[3] for r in rows], dtype=object),
        item_pks=all_pks,
        active=active,
    )


def dataset_fingerprint() -> str:
    """A hash of the evaluated data: every event id with its item and time, and the active catalog."""
    n_events, events_md5 = events_fingerprint()
    n_items, items_md5 = items_active_fingerprint()
    return hashlib.sha256(f"{n_events}:{events_md5}:{n_items}:{items_md5}".encode()).hexdigest()


def _by_user(data: EventData) -> dict[str, np.ndarray]:
    order = np.argsort(data.user_ids, kind="stable")  # events are time-ordered; stable keeps that
    users, starts = np.unique(data.user_ids[order], return_index=True)
    bounds = list(starts) + [len(order)]
    return {str(u): order[bounds[i] : bounds[i + 1]] for i, u in enumerate(users)}


def split_build(data: EventData, *, protocol: str, test_days: float = 14.0) -> Split:
    if protocol == "leave-one-out":
        return _split_leave_one_out(data)
    if protocol == "temporal":
        return _split_temporal(data, test_days=test_days)
    raise ValueError(f"unknown protocol {protocol!r}; one of {', '.join(PROTOCOLS)}")


def _split_leave_one_out(data: EventData) -> Split:
    train_mask = np.ones(len(data.item_idx), dtype=bool)
    users, test, history = [], {}, {}
    for user, rows in _by_user(data).items():
        if user.startswith(SESSION_ACTOR):  # anonymous sessions train, but are not evaluated
            continue
        items = data.item_idx[rows]
        _, first = np.unique(items, return_index=True)
        distinct = items[np.sort(first)]
        if len(distinct) < 3:
            continue
        test_item, valid_item = int(distinct[-1]), int(distinct[-2])
        valid_ts = data.ts[rows][items == valid_item].min()
        keep = (data.ts[rows] < valid_ts) & (items != test_item) & (items != valid_item)
        # a tie on the validation timestamp can leave nothing: then there is no history to rank from
        if not keep.any():
            train_mask[rows] = False
            continue
        train_mask[rows[~keep]] = False
        if not data.active[test_item]:
            continue
        users.append(user)
        test[user] = {test_item}
        history[user] = [int(i) for i in items[keep]]
    train = np.flatnonzero(train_mask)
    return Split("leave-one-out", train, users, test, history, held_out=int((~train_mask).sum()))


def _split_temporal(data: EventData, *, test_days: float) -> Split:
    cut = float(data.ts.max()) - test_days * 86400.0 if len(data.ts) else 0.0
    train = np.flatnonzero(data.ts < cut)
    in_test = np.flatnonzero(data.ts >= cut)  # the cut is test_days before the last event
    history: dict[str, list[int]] = {}
    for i in train:
        history.setdefault(str(data.user_ids[i]), []).append(int(data.item_idx[i]))
    test: dict[str, set[int]] = {}
    for i in in_test:
        user, item = str(data.user_ids[i]), int(data.item_idx[i])
        if user in history and data.active[item] and not user.startswith(SESSION_ACTOR):
            test.setdefault(user, set()).add(item)
    for user in list(test):
        test[user] -= set(history[user])
        if not test[user]:
            del test[user]
    users = sorted(test)
    return Split(
        "temporal",
        train,
        users,
        test,
        {u: history[u] for u in users},
        cut_ts=cut,
        held_out=len(data.ts) - len(train),
    )


# --- training-only model inputs


@dataclass
class TrainingStats:
    popularity: np.ndarray  # distinct training actors per item
    cooccurrence: sparse.csr_matrix  # item x item, distinct actors who had both
    n_users: int


def training_stats_build(data: EventData, split: Split) -> TrainingStats:
    users, user_codes = np.unique(data.user_ids[split.train], return_inverse=True)
    n_items = len(data.item_pks)
    x = sparse.csr_matrix(
        (np.ones(len(split.train), dtype=np.float32), (user_codes, data.item_idx[split.train])),
        shape=(len(users), n_items),
    )
    x.data[:] = 1.0  # duplicates summed by csr: back to "had it or not"
    x.sum_duplicates()
    x.data[:] = 1.0
    popularity = np.asarray(x.sum(axis=0)).ravel()
    cooc = (x.T @ x).tocsr()
    cooc.setdiag(0)
    cooc.eliminate_zeros()
    return TrainingStats(popularity=popularity, cooccurrence=cooc, n_users=len(users))


def item_vectors_load(data: EventData) -> np.ndarray:
    """L2-normalised item vectors by item index; zero rows for items without a vector."""
    vectors = np.zeros((len(data.item_pks), settings.EMBEDDING_DIM), dtype=np.float32)
    index = {int(pk): i for i, pk in enumerate(data.item_pks)}
    for pk, vec in item_vectors_iter(item_pks=[int(p) for p in data.item_pks]):
        v = np.asarray(vec, dtype=np.float32)
        n = np.linalg.norm(v)
        if n > 0:
            vectors[index[pk]] = v / n
    return vectors


def user_vectors_build(data: EventData, split: Split, vectors: np.ndarray) -> dict[str, np.ndarray]:
    """Each evaluated user's vector from their training events only: the engagement-weighted mean of item
    vectors, decayed with the configured half-life relative to the user's last training event."""
    half_life = settings.RECSYS_USER_HALF_LIFE_DAYS * 86400.0
    evaluated = set(split.users)
    by_user: dict[str, list[int]] = {}
    for i in split.train:
        user = str(data.user_ids[i])
        if user in evaluated:
            by_user.setdefault(user, []).append(int(i))
    out = {}
    for user, rows in by_user.items():
        rows_arr = np.array(rows)
        ts = data.ts[rows_arr]
        decay = np.power(0.5, (ts.max() - ts) / half_life) if half_life > 0 else np.ones(len(ts))
        w = np.array([event_weight(t) for t in data.event_type[rows_arr]]) * decay
        v = (vectors[data.item_idx[rows_arr]] * w[:, None]).sum(axis=0)
        n = np.linalg.norm(v)
        out[user] = v / n if n > 0 else v
    return out


# --- recommenders: each scores a block of users over every item (higher is better)

Scorer = Callable[[list[str]], np.ndarray]


def _scorers(data: EventData, split: Split, stats: TrainingStats, vectors: np.ndarray) -> dict[str, Scorer]:
    n_items = len(data.item_pks)
    # popularity breaks ties everywhere, scaled far below one unit of any primary score
    tie = stats.popularity / (stats.popularity.max() + 1.0) * 1e-3
    last = {u: split.history[u][-1] for u in split.users}
    has_vec = np.linalg.norm(vectors, axis=1) > 0
    user_vecs: dict[str, np.ndarray] = {}

    def popularity(users: list[str]) -> np.ndarray:
        return np.tile(stats.popularity.astype(np.float32), (len(users), 1))

    def cooccurrence(users: list[str]) -> np.ndarray:
        rows = stats.cooccurrence[[last[u] for u in users]].toarray().astype(np.float32)
        return rows + tie

    def content(users: list[str]) -> np.ndarray:
        s = vectors[[last[u] for u in users]] @ vectors.T
        s[:, ~has_vec] = -np.inf
        return s + tie

    def user_vector(users: list[str]) -> np.ndarray:
        if not user_vecs:
            user_vecs.update(user_vectors_build(data, split, vectors))
        q = np.stack([user_vecs.get(u, np.zeros(vectors.shape[1], dtype=np.float32)) for u in users])
        s = q @ vectors.T
        s[:, ~has_vec] = -np.inf
        return s + tie

    assert n_items == len(stats.popularity)
    return {
        "popularity": popularity,
        "cooccurrence": cooccurrence,
        "content": content,
        "user_vector": user_vector,
    }


def _top_k(scores: np.ndarray, k: int) -> np.ndarray:
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


def rankings_compute(
    data: EventData,
    split: Split,
    scorer: Scorer,
    *,
    k: int,
    desc: str = "",
    progress: bool = True,
    on_users: Callable[[int], None] | None = None,
) -> dict[str, list[int]]:
    """The top k item indices per evaluated user: active items only, the user's training items removed.
    `on_users` is called with the number of users ranked so far, after each block."""
    n_items = len(data.item_pks)
    chunk = max(1, SCORE_BLOCK_FLOATS // max(n_items, 1))
    out: dict[str, list[int]] = {}
    bar = tqdm(total=len(split.users), desc=desc, unit="user", disable=not progress, leave=False)
    for start in range(0, len(split.users), chunk):
        users = split.users[start : start + chunk]
        scores = np.asarray(scorer(users), dtype=np.float32)
        scores[:, ~data.active] = -np.inf
        for row, user in enumerate(users):
            scores[row, split.history[user]] = -np.inf
        top = _top_k(scores, k)
        for row, user in enumerate(users):
            valid = np.isfinite(scores[row, top[row]])
            out[user] = [int(i) for i in top[row][valid]]
        bar.update(len(users))
        if on_users:
            on_users(start + len(users))
    bar.close()
    return out


def metrics_summarize(
    rankings: dict[str, Sequence[int]],
    split: Split,
    *,
    ks: Sequence[int],
    catalog_size: int,
    popularity: np.ndarray,
    vectors: np.ndarray,
) -> dict[str, float]:
    users = split.users
    out: dict[str, float] = {}
    pop = {i: float(p) for i, p in enumerate(popularity)}
    for k in ks:
        out[f"recall@{k}"] = float(
            np.mean([metrics.recall_at_k(rankings[u], split.test[u], k) for u in users])
        )
        out[f"ndcg@{k}"] = float(np.mean([metrics.ndcg_at_k(rankings[u], split.test[u], k) for u in users]))
        out[f"hit_rate@{k}"] = float(
            np.mean([metrics.hit_rate_at_k(rankings[u], split.test[u], k) for u in users])
        )
    kmax = max(ks)
    out["mrr"] = float(np.mean([metrics.reciprocal_rank(rankings[u][:kmax], split.test[u]) for u in users]))
    for k in ks:
        lists = [rankings[u][:k] for u in users]
        out[f"coverage@{k}"] = metrics.coverage_at_k(lists, k, catalog_size)
        diversity = metrics.mean_diversity(
            vectors[[i for i in ranked if vectors[i].any()]] for ranked in lists
        )
        out[f"diversity@{k}"] = diversity if diversity is not None else math.nan
        out[f"mean_popularity@{k}"] = metrics.mean_popularity_at_k(lists, k, pop)
    return out


@dataclass
class EvaluationResult:
    """One evaluation: what analytics stores as an EvaluationRun (the fields up to `label`), the split it
    ran on and each method's rankings."""

    protocol: str
    dataset_fingerprint: str
    configuration: dict
    metrics: dict[str, dict[str, float | None]]  # method -> metric -> value; None where not finite
    summary: dict
    duration_seconds: float
    label: str
    split: Split
    rankings: dict[str, dict[str, list[int]]]


def evaluation_run(
    *,
    protocol: str,
    ks: Sequence[int] = DEFAULT_KS,
    test_days: float = 14.0,
    methods: Sequence[str] | None = None,
    extra_scorers: dict[str, Callable[..., Scorer]] | None = None,
    label: str = "",
    progress: bool = True,
    data: EventData | None = None,
    max_users: int | None = None,
    on_progress: Callable[[float, str], None] | None = None,
) -> EvaluationResult:
    """Split, build the training-only inputs, rank with every method and score (nothing is stored).
    `extra_scorers` maps a method name to a factory(data, split, stats, vectors, k=...) -> Scorer (how the
    configured recommender is plugged in). `on_progress(fraction, what)` is told how far the ranking is
    (0 to 1, by method and by block of users), e.g. for a run started from the report page."""
    started = time.perf_counter()
    ks = sorted(set(ks))
    data = data if data is not None else events_load()
    split = split_build(data, protocol=protocol, test_days=test_days)
    if max_users is not None and len(split.users) > max_users:
        # a fixed sample (by hash of the id), the same for every method and seed
        split.users = sorted(
            sorted(split.users, key=lambda u: hashlib.md5(u.encode()).hexdigest())[:max_users]
        )
    stats = training_stats_build(data, split)
    vectors = item_vectors_load(data)
    scorers = _scorers(data, split, stats, vectors)
    for name, factory in (extra_scorers or {}).items():
        scorer = factory(data, split, stats, vectors, k=max(ks))
        if scorer is not None:  # None: that recommender is not available in this deployment
            scorers[name] = scorer
    names = list(methods) if methods else list(scorers)
    unknown = [m for m in names if m not in scorers]
    if unknown:
        raise ValueError(f"unknown method(s) {', '.join(unknown)}; known: {', '.join(scorers)}")
    catalog_size = int(data.active.sum())
    results, rankings = {}, {}
    for done, name in enumerate(names):
        if not split.users:
            results[name] = {}
            continue
        if on_progress:
            on_progress(done / len(names), name)

        def ranked(users: int, done: int = done, name: str = name) -> None:
            if on_progress:
                on_progress((done + users / len(split.users)) / len(names), name)

        rankings[name] = rankings_compute(
            data, split, scorers[name], k=max(ks), desc=name, progress=progress, on_users=ranked
        )
        results[name] = metrics_summarize(
            rankings[name],
            split,
            ks=ks,
            catalog_size=catalog_size,
            popularity=stats.popularity,
            vectors=vectors,
        )
    summary = {
        "users_evaluated": len(split.users),
        "events": int(len(data.ts)),
        "train_events": int(len(split.train)),
        "held_out_events": split.held_out,
        "test_items": int(sum(len(t) for t in split.test.values())),
        "active_items": catalog_size,
        "items_with_vectors": int((np.linalg.norm(vectors, axis=1) > 0).sum()),
    }
    configuration = {
        "protocol": protocol,
        "ks": ks,
        "methods": names,
        "exclude_seen": True,
        "event_weights": settings.RECSYS_EVENT_WEIGHTS,
        "user_half_life_days": settings.RECSYS_USER_HALF_LIFE_DAYS,
        "embedding_model": settings.RECSYS_EMBEDDING_MODEL,
        "vector_backend": settings.RECSYS_VECTOR_BACKEND,
    }
    if max_users is not None:
        configuration["max_users"] = max_users
    if protocol == "temporal":
        configuration["test_days"] = test_days
        configuration["cut"] = split.cut_ts
    return EvaluationResult(
        protocol=protocol,
        dataset_fingerprint=dataset_fingerprint(),
        configuration=configuration,
        metrics=_json_safe(results),
        summary=summary,
        duration_seconds=time.perf_counter() - started,
        label=label,
        split=split,
        rankings=rankings,
    )


def evaluation_record(result: EvaluationResult) -> int | None:
    """Have the result stored where the apps above keep evaluation runs (analytics' EvaluationRun, by its
    receiver of `evaluation_finished`) and return the stored run's id; None when no app stores runs."""
    for _receiver, run_id in evaluation_finished.send(sender=EvaluationResult, result=result):
        if isinstance(run_id, int):
            return run_id
    return None


def _json_safe(value):
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value

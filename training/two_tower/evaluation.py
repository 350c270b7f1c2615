"""The two-tower model as a method of `training.evaluation.evaluation_run`: a factory(data, split, stats,
vectors, k=...) -> Scorer, like the served recommender's.

No leakage: the model trains on `split.train` only (its own validation slice is carved out of those
events), and each evaluated user's sequence is built from their training events only. `evaluate` lists it
as `two_tower` beside the baselines; the registry's gate scores a candidate and the active version with
the same factories in one run.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from recommendations.two_tower.features import Encoded, distinct_first, sequence_encode
from recommendations.two_tower.training import TrainConfig, TrainedModel, model_train, user_vectors_batch


def user_sequences(data, split, *, max_len: int) -> dict[str, Encoded]:
    """Each evaluated user's training events as an encoded sequence."""
    evaluated = set(split.users)
    rows_by_user: dict[str, list[int]] = {}
    for i in split.train:
        user = str(data.user_ids[i])
        if user in evaluated:
            rows_by_user.setdefault(user, []).append(int(i))
    out = {}
    for user, rows in rows_by_user.items():
        r = np.array(rows)
        items, types, ts = distinct_first(data.item_idx[r], data.event_type[r], data.ts[r])
        out[user] = sequence_encode(items, types, ts, max_len=max_len)
    return out


def scorer_for(trained: TrainedModel, data, split, stats) -> Callable[[list[str]], np.ndarray]:
    """Scores users with a trained model: cosine(user tower, item tower) over every item of `data`,
    popularity as the tie-break (as the baselines do)."""
    from recommendations.two_tower.features import item_features_load

    config = trained.config
    features = item_features_load(
        item_pks=data.item_pks, cat_buckets=config.cat_buckets, brand_buckets=config.brand_buckets
    )
    item_vecs = trained.item_vectors(features)
    seqs = user_sequences(data, split, max_len=config.max_len)
    tie = stats.popularity / (stats.popularity.max() + 1.0) * 1e-3
    dim = item_vecs.shape[1]

    def score(users: list[str]) -> np.ndarray:
        known = [u for u in users if u in seqs]
        q = np.zeros((len(users), dim), dtype=np.float32)
        if known:
            batch = Encoded(
                items=np.vstack([seqs[u].items for u in known]),
                types=np.vstack([seqs[u].types for u in known]),
                ages=np.vstack([seqs[u].ages for u in known]),
            )
            vecs = user_vectors_batch(trained.model, item_vecs, batch)
            where = {u: i for i, u in enumerate(known)}
            for row, u in enumerate(users):
                if u in where:
                    q[row] = vecs[where[u]]
        return q @ item_vecs.T + tie

    return score


def two_tower_factory(*, seed: int | None = None, progress: bool = False, on_trained=None, **overrides):
    """A factory for `evaluation_run(extra_scorers=...)` that trains a fresh model on the split's training
    events. `on_trained(trained)` receives the model (the registry keeps it as the candidate)."""

    def factory(data, split, stats, vectors, *, k: int = 50):
        config = TrainConfig.from_settings(seed=seed, **overrides)
        trained = model_train(stream=data, train_rows=split.train, config=config, progress=progress)
        if on_trained is not None:
            on_trained(trained)
        return scorer_for(trained, data, split, stats)

    return factory


def two_tower_scorer_factory(data, split, stats, vectors, *, k: int = 50):
    """`evaluate`'s `two_tower` method: a model trained with the configured settings and seed. Trained on
    first use, so `evaluate --methods ...` without it costs nothing."""
    state: dict = {}

    def score(users: list[str]) -> np.ndarray:
        if "scorer" not in state:
            state["scorer"] = two_tower_factory(progress=True)(data, split, stats, vectors, k=k)
        return state["scorer"](users)

    return score

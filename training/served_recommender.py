"""The single-retrieval recommender (the path served when no ranker is active), as served: offline evaluation ranks with the serving code path itself
(`recommendations.scenarios.recommendations_for_user`: retrieval through the configured vector backend,
the surface's re-ranking profile, the same filters), in preview mode so nothing is logged.

No leakage: the user's vector and history are built from training events only and passed in, and the
popularity table that trending and the popularity penalty read is replaced, inside a transaction that is
rolled back afterwards, by training-only counts.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
from django.db import connection, transaction
from tqdm import tqdm

from interactions.selectors import event_weight
from recommendations import scenarios, selectors
from recommendations.ranker.serving import ranker_override
from training.evaluation import user_vectors_build

# The served list is as long as the largest K evaluated, up to the API's own maximum.
MAX_LIMIT = 100


def _training_history(data, rows: np.ndarray) -> selectors.History:
    history = selectors.History()
    weights: dict[int, float] = {}
    # newest first, with the serving weights (halving every 20 events back)
    for rank, i in enumerate(rows[::-1][: selectors.HISTORY_EVENTS]):
        pk = int(data.item_pks[data.item_idx[i]])
        kind = str(data.event_type[i])
        (history.bought_pks if kind == "purchase" else history.seen_pks).add(pk)
        weights[pk] = weights.get(pk, 0.0) + event_weight(kind) * 0.5 ** (rank / 20)
    history.recent = list(weights.items())
    return history


def _popularity_replace(data, stats) -> None:
    """Training-only popularity in place of the live table (the caller rolls this back)."""
    pks = [int(data.item_pks[i]) for i in np.flatnonzero(stats.popularity > 0)]
    counts = [int(stats.popularity[i]) for i in np.flatnonzero(stats.popularity > 0)]
    with connection.cursor() as cur:
        cur.execute("DELETE FROM recommendations_itempopularity")
        cur.execute(
            """
            INSERT INTO recommendations_itempopularity (item_id, score, interaction_count, created_at, updated_at)
            SELECT pk, n, n, now(), now() FROM unnest(%s::bigint[], %s::int[]) AS t(pk, n)
            """,
            [pks, counts],
        )


class _Rollback(Exception):
    pass


def served_scorer_factory(data, split, stats, vectors, *, k: int = 50, progress: bool = True):
    """A Scorer for `evaluation_run`: the served list's order as scores (-inf for what it left out). With
    `progress`, a bar per user (the evaluation's own bar moves per block of users)."""
    index = {int(pk): i for i, pk in enumerate(data.item_pks)}
    train_rows: dict[str, list[int]] = {}
    evaluated = set(split.users)
    for i in split.train:
        user = str(data.user_ids[i])
        if user in evaluated:
            train_rows.setdefault(user, []).append(int(i))
    user_vecs: dict[str, np.ndarray] = {}

    def score(users: list[str]) -> np.ndarray:
        if not user_vecs:
            user_vecs.update(user_vectors_build(data, split, vectors))
        out = np.full((len(users), len(data.item_pks)), -np.inf, dtype=np.float32)
        limit = min(k, MAX_LIMIT)
        params = scenarios.ListParams(limit=limit)
        try:
            with transaction.atomic(), ranker_override(None):
                _popularity_replace(data, stats)
                for row, user in enumerate(
                    tqdm(users, desc="served", unit="user", leave=False, disable=not progress)
                ):
                    rows = np.array(train_rows.get(user, []), dtype=np.int64)
                    last_ts = float(data.ts[rows].max()) if len(rows) else split.cut_ts or 0.0
                    vector = user_vecs.get(user)
                    preview = scenarios.PreviewOptions(
                        now=datetime.fromtimestamp(last_ts + 1, tz=UTC), promotions=False
                    )
                    if vector is None or not np.any(vector):
                        # no training item has a vector: what serving gives a user it cannot place
                        answer = scenarios.recommendations_trending(params=params, preview=preview)
                    else:
                        answer = scenarios.recommendations_for_user(
                            user_id=user,
                            params=params,
                            preview=preview,
                            history=_training_history(data, rows),
                            vector=vector,
                        )
                    for rank, item in enumerate(answer.items):
                        i = index.get(int(item["pk"]))
                        if i is not None:
                            out[row, i] = float(limit - rank)
                raise _Rollback
        except _Rollback:
            pass
        return out

    return score

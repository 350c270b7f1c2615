"""The candidate sources, the learned ranker and the served default as methods of `evaluation_run`, all
from ONE pass through the serving code per user (`scenarios.recommendations_for_user` in preview mode):
each source's own list (`src_<name>`), the ranker's order before any business rule (`ranker`), and the
answer as served, re-ranking profile included (`served`).

No leakage: the ranker is trained on the split's training events only (its own inner time cut,
`training.ranker.training`); during the pass the popularity table holds training-only numbers
(replaced inside a transaction that is rolled back), co-visitation is read from matrices built from the
training events, and each user's history and vector come from their training events.

Also here: `cooccurrence_visit`, the stronger co-occurrence baseline (the rows of every item of the user's
last visit, summed, each candidate divided by the square root of its popularity).
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
from django.db import transaction
from tqdm import tqdm

from recommendations import scenarios, selectors, sources
from recommendations.ranker import serving as ranker_serving
from recommendations.ranker.model import Ranker
from training.ablation import Ablation, Variant
from training.ranker.training import (
    DEFAULT_SOURCES,
    covisitation_neighbours_for,
    popularity_replace,
    ranker_fit,
    user_history,
    user_vector,
)

MAX_LIMIT = 100


class _Rollback(Exception):
    pass


class RankerPass:
    """Trains the ranker on the split (once) and runs the serving pass for the users asked (cached)."""

    def __init__(
        self,
        data,
        split,
        stats,
        vectors,
        *,
        k: int,
        seed: int = 0,
        progress: bool = False,
        ranker=None,
        **fit,
    ):
        self.data, self.split, self.vectors, self.k = data, split, vectors, k
        self.seed, self.progress, self.fit = seed, progress, fit
        self.index = {int(pk): i for i, pk in enumerate(data.item_pks)}
        self.rows: dict[str, list[int]] = {}
        evaluated = set(split.users)
        for i in split.train:
            user = str(data.user_ids[i])
            if user in evaluated:
                self.rows.setdefault(user, []).append(int(i))
        # given: a stored ranker (the registry's active version), else one trained on the split
        self.ranker: Ranker | None = ranker
        self.lists: dict[str, dict[str, list[int]]] = {}  # method -> user -> item indices, best first
        self.seconds_per_user: list[float] = []
        self.unavailable: str | None = None
        self.ablation = None  # a training.ablation.Ablation: more lists from each user's trace

    def ensure_ranker(self) -> Ranker | None:
        """The ranker, or None when the training events give it no rows (a tiny shop): then `served` is
        the single-retrieval path, as serving would be, and `ranker` / `src_*` rank nothing."""
        if self.ranker is None and self.unavailable is None:
            try:
                self._fit()
            except ValueError as exc:
                self.unavailable = str(exc)
        return self.ranker

    def _fit(self) -> None:
        if self.ranker is None:
            # the ranker's own training split is of the evaluated protocol's kind, inside split.train
            self.ranker = ranker_fit(
                self.data,
                self.split.train,
                self.vectors,
                protocol=self.split.protocol,
                seed=self.seed,
                progress=self.progress,
                **self.fit,
            )

    def run(self, users: list[str]) -> None:
        todo = [u for u in users if u not in self.lists.get("served", {})]
        if not todo:
            return
        import time

        ranker = self.ensure_ranker()
        data = self.data
        train = np.asarray(self.split.train)
        end_ts = float(data.ts[train].max())
        neighbours = covisitation_neighbours_for(data, train)
        limit = min(self.k, MAX_LIMIT)
        params = scenarios.ListParams(limit=limit)
        try:
            with transaction.atomic():
                popularity_replace(data, train, now_ts=end_ts)
                selectors.serving_config_clear()
                sources.covisitation_in_memory(neighbours)
                with ranker_serving.ranker_override(ranker, name="evaluation"):
                    for user in tqdm(todo, desc="ranker pass", unit="user", disable=not self.progress):
                        rows = np.array(self.rows.get(user, []), dtype=np.int64)
                        last_ts = float(data.ts[rows].max()) if len(rows) else end_ts
                        trace: dict = {}
                        preview = scenarios.PreviewOptions(
                            now=datetime.fromtimestamp(last_ts + 1, tz=UTC), promotions=False, trace=trace
                        )
                        started = time.perf_counter()
                        answer = scenarios.recommendations_for_user(
                            user_id=user,
                            params=params,
                            preview=preview,
                            history=user_history(data, rows),
                            vector=user_vector(data, rows, self.vectors)
                            if len(rows)
                            else np.zeros(self.vectors.shape[1], np.float32),
                        )
                        self.seconds_per_user.append(time.perf_counter() - started)
                        self._keep("served", user, [int(item["pk"]) for item in answer.items])
                        self._keep("ranker", user, trace.get("ranked", []))
                        for method, pks in (self.ablation.lists_for(trace) if self.ablation else {}).items():
                            self._keep(method, user, pks)
                        for name, out in trace.get("sources", {}).items():
                            self._keep(f"src_{name}", user, sorted(out, key=lambda p: (-out[p], p)))
                raise _Rollback
        except _Rollback:
            pass
        finally:
            sources.covisitation_in_memory(None)
            selectors.serving_config_clear()

    def _keep(self, method: str, user: str, pks: list[int]) -> None:
        self.lists.setdefault(method, {})[user] = [self.index[pk] for pk in pks if pk in self.index]

    def scorer(self, method: str):
        def score(users: list[str]) -> np.ndarray:
            self.run(users)
            out = np.full((len(users), len(self.data.item_pks)), -np.inf, dtype=np.float32)
            for row, user in enumerate(users):
                ranked = self.lists.get(method, {}).get(user, [])
                out[row, ranked] = np.arange(len(ranked), 0, -1, dtype=np.float32)
            return out

        return score


def ranker_methods(
    *,
    seed: int = 0,
    progress: bool = False,
    names: tuple[str, ...] = DEFAULT_SOURCES,
    holder=None,
    ranker: Ranker | None = None,
    **fit,
):
    """extra_scorers for `evaluation_run`: `served`, `ranker` and `src_<name>` for each source, sharing
    one RankerPass (built on first use). `holder` (a list) receives the pass, for the bench; `ranker`
    serves a stored model instead of training one on the split."""
    state: dict = {}

    def factory_for(method: str):
        def factory(data, split, stats, vectors, *, k: int = 50):
            if "pass" not in state or state["pass"].split is not split:
                fitted = {"names": ranker.sources if ranker is not None else names, **fit}
                state["pass"] = RankerPass(
                    data, split, stats, vectors, k=k, seed=seed, progress=progress, ranker=ranker, **fitted
                )
                if holder is not None:
                    holder.append(state["pass"])
            return state["pass"].scorer(method)

        return factory

    methods = {"served": factory_for("served"), "ranker": factory_for("ranker")}
    for name in ranker.sources if ranker is not None else names:
        methods[f"src_{name}"] = factory_for(f"src_{name}")
    return methods


def cooccurrence_visit_factory(data, split, stats, vectors, *, k: int = 50):
    """Co-occurrence summed over every item of the user's last visit (their last training timestamp:
    one invoice), each candidate's count divided by sqrt(popularity)."""
    last_visit: dict[str, list[int]] = {}
    last_ts: dict[str, float] = {}
    evaluated = set(split.users)
    for i in split.train:
        user = str(data.user_ids[i])
        if user not in evaluated:
            continue
        t = float(data.ts[i])
        if t > last_ts.get(user, -np.inf):
            last_ts[user], last_visit[user] = t, [int(data.item_idx[i])]
        elif t == last_ts[user]:
            last_visit[user].append(int(data.item_idx[i]))
    damp = 1.0 / np.sqrt(np.maximum(stats.popularity, 1.0))
    tie = stats.popularity / (stats.popularity.max() + 1.0) * 1e-3

    def score(users: list[str]) -> np.ndarray:
        out = np.zeros((len(users), len(data.item_pks)), dtype=np.float32)
        for row, user in enumerate(users):
            items = sorted(set(last_visit.get(user, [])))
            if items:
                out[row] = np.asarray(stats.cooccurrence[items].sum(axis=0)).ravel() * damp
        return out + tie

    return score


def ablation_methods(variants: list[Variant], *, progress: bool = False, **ranker_options):
    """extra_scorers for `evaluation_run`: `ranker_methods` (served, ranker, src_*) plus one method per
    variant, all from the same serving pass."""
    holder: list = []
    methods = ranker_methods(progress=progress, holder=holder, **ranker_options)
    served = methods["served"]
    ablation = Ablation(variants)

    def factory_for(method: str):
        def factory(data, split, stats, vectors, *, k: int = 50):
            served(data, split, stats, vectors, k=k)  # builds the shared pass for this split
            ranker_pass = holder[-1]
            ranker_pass.ablation = ablation
            return ranker_pass.scorer(method)

        return factory

    return {**methods, **{v.method: factory_for(v.method) for v in variants}}

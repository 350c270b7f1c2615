"""The ranker model: LightGBM LambdaRank over `features.feature_names(sources)`, trained on groups of
candidates (one group per user and time cut), with early stopping on a held-out slice of the groups.

On disk: one text file (LightGBM's own model format) and a small JSON of what it needs at serving time
(the sources it was trained with, in order), under RECSYS_DATA_DIR/models/ranker/.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path

import lightgbm as lgb
import numpy as np
from django.conf import settings

from recommendations.ranker.features import feature_names

PARAMS = {
    "objective": "lambdarank",
    "metric": "ndcg",
    "eval_at": [10],
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_data_in_leaf": 50,
    "feature_fraction": 0.9,
    "lambdarank_truncation_level": 20,
    "num_threads": 1,
    "verbosity": -1,
    "deterministic": True,
}
MAX_ROUNDS = 400
EARLY_STOPPING = 30
VALID_SHARE = 0.2


@dataclass
class Ranker:
    booster: lgb.Booster
    sources: tuple[str, ...]
    info: dict = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def predict(self, features: np.ndarray) -> np.ndarray:
        if not len(features):
            return np.zeros(0)
        # one thread: the request path runs on many workers at once; ~500 rows take ~1 ms
        return self.booster.predict(features, num_threads=1)


def ranker_train(
    features: np.ndarray,
    labels: np.ndarray,
    groups: np.ndarray,
    *,
    sources: tuple[str, ...],
    seed: int = 0,
    params: dict | None = None,
) -> Ranker:
    """Groups are consecutive rows (sizes in `groups`); the last VALID_SHARE of groups (in a seeded
    shuffle) is the validation slice that early stopping watches."""
    rng = np.random.default_rng(seed)
    starts = np.concatenate([[0], np.cumsum(groups)[:-1]])
    order = rng.permutation(len(groups))
    n_valid = max(1, int(len(groups) * VALID_SHARE)) if len(groups) > 4 else 0
    valid_g, train_g = order[:n_valid], order[n_valid:]

    def take(gs):
        gs = np.sort(gs)
        rows = np.concatenate([np.arange(starts[g], starts[g] + groups[g]) for g in gs])
        return features[rows], labels[rows], groups[gs]

    names = feature_names(sources)
    x, y, g = take(train_g)
    train = lgb.Dataset(x, y, group=g, feature_name=names, free_raw_data=False)
    merged = {**PARAMS, **(params or {}), "seed": seed}
    callbacks = []
    valid_sets = []
    if n_valid:
        vx, vy, vg = take(valid_g)
        valid_sets = [lgb.Dataset(vx, vy, group=vg, reference=train)]
        callbacks = [lgb.early_stopping(EARLY_STOPPING, verbose=False)]
    booster = lgb.train(merged, train, num_boost_round=MAX_ROUNDS, valid_sets=valid_sets, callbacks=callbacks)
    best = booster.best_iteration or MAX_ROUNDS
    info = {
        "rounds": best,
        "groups": int(len(groups)),
        "rows": int(len(labels)),
        "positives": int((labels > 0).sum()),
        "valid_ndcg@10": float(booster.best_score["valid_0"]["ndcg@10"]) if n_valid else None,
        "params": {k: v for k, v in merged.items() if k != "eval_at"},
    }
    if best < booster.current_iteration():
        booster = lgb.Booster(model_str=booster.model_to_string(num_iteration=best))
    return Ranker(booster=booster, sources=tuple(sources), info=info)


def models_dir() -> Path:
    return Path(getattr(settings, "RECSYS_RANKER_DIR", settings.RECSYS_DATA_DIR / "models" / "ranker"))


def ranker_save(ranker: Ranker, *, name: str) -> Path:
    """Written under a temporary name and renamed, so a reader never sees half a model."""
    final = models_dir() / name
    final.mkdir(parents=True, exist_ok=True)
    for fname, text in (
        ("model.txt", ranker.booster.model_to_string()),
        ("meta.json", json.dumps({"sources": list(ranker.sources), "info": ranker.info})),
    ):
        tmp = final / (fname + ".tmp")
        tmp.write_text(text)
        tmp.replace(final / fname)
    return final


def ranker_load(path: str | Path) -> Ranker:
    path = Path(path)
    meta = json.loads((path / "meta.json").read_text())
    booster = lgb.Booster(model_file=str(path / "model.txt"))
    return Ranker(booster=booster, sources=tuple(meta["sources"]), info=meta.get("info", {}))

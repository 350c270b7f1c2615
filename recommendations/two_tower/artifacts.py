"""A trained model on disk: `model.pt` (the state dict), `meta.json` (shape, configuration, the id slot of
each known item pk, price boundaries). One directory per ModelVersion under RECSYS_TWO_TOWER_DIR, written
to a temporary name and renamed, so a reader never sees half a model."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from django.conf import settings

from recommendations.two_tower.model import ModelShape, TwoTower
from recommendations.two_tower.training import TrainConfig, TrainedModel
from recommendations.two_tower.user_tower import UserTowerWeights


def models_dir() -> Path:
    return Path(getattr(settings, "RECSYS_TWO_TOWER_DIR", settings.RECSYS_DATA_DIR / "models" / "two_tower"))


def artifact_save(trained: TrainedModel, *, version_id: int) -> Path:
    final = models_dir() / f"v{version_id}"
    tmp = final.with_name(final.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    torch.save(trained.model.state_dict(), tmp / "model.pt")
    meta = {
        "shape": trained.model.shape.as_dict(),
        "config": trained.config.as_dict(),
        "id_by_pk": {str(pk): slot for pk, slot in trained.id_by_pk.items()},
        "price_boundaries": trained.price_boundaries,
        "history": trained.history,
        "best_epoch": trained.best_epoch,
    }
    (tmp / "meta.json").write_text(json.dumps(meta))
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    return final


@dataclass(frozen=True)
class LoadedModel:
    trained: TrainedModel
    user_tower: UserTowerWeights


@lru_cache(maxsize=4)
def artifact_load(path: str) -> LoadedModel:
    """Cached per process by path: a version's directory never changes once written."""
    directory = Path(path)
    meta = json.loads((directory / "meta.json").read_text())
    model = TwoTower(ModelShape(**meta["shape"]))
    model.load_state_dict(torch.load(directory / "model.pt", map_location="cpu", weights_only=True))
    model.eval()
    known = set(TrainConfig.__dataclass_fields__)
    trained = TrainedModel(
        model=model,
        config=TrainConfig(**{k: v for k, v in meta["config"].items() if k in known}),
        id_by_pk={int(pk): int(slot) for pk, slot in meta["id_by_pk"].items()},
        price_boundaries=[float(b) for b in meta["price_boundaries"]],
        history=meta.get("history", []),
        best_epoch=int(meta.get("best_epoch", 0)),
    )
    return LoadedModel(trained=trained, user_tower=UserTowerWeights.from_model(model))


def artifact_delete(path: str) -> None:
    if path:
        shutil.rmtree(path, ignore_errors=True)


__all__ = ["LoadedModel", "artifact_delete", "artifact_load", "artifact_save", "models_dir", "np"]

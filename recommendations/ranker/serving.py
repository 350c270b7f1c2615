"""The ranker on the request path: the active version (from the registry), loaded once per process and
re-checked every ACTIVE_TTL_SECONDS; offline evaluation swaps in a ranker trained on its split only
(`ranker_override`), so `served` is ranked by a model that never saw the test period."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from recommendations.ranker.model import Ranker, ranker_load

ACTIVE_TTL_SECONDS = 2.0


@dataclass(frozen=True)
class Loaded:
    name: str
    ranker: Ranker


_state: dict = {"expires": 0.0, "loaded": None, "override": None, "path": None}
_lock = threading.Lock()


def active_ranker_clear() -> None:
    with _lock:
        _state["expires"] = 0.0


@contextmanager
def ranker_override(ranker: Ranker | None, *, name: str = "offline") -> Iterator[None]:
    """Serve with this ranker (None: with none, the single-retrieval path) inside the block."""
    with _lock:
        before = _state["override"]
        _state["override"] = ("set", Loaded(name, ranker) if ranker is not None else None)
    try:
        yield
    finally:
        with _lock:
            _state["override"] = before


def ranker_compatible(ranker: Ranker) -> bool:
    """Whether the model was trained on the features this code computes (the same names, in order: a
    feature whose meaning changes gets a new name)."""
    from recommendations.ranker.features import feature_names

    return list(ranker.booster.feature_name()) == feature_names(ranker.sources)


def ranker_active() -> Loaded | None:
    override = _state["override"]
    if override is not None:
        return override[1]
    now = time.monotonic()
    if _state["expires"] > now:
        return _state["loaded"]
    from recommendations.models import ModelVersion

    version = (
        ModelVersion.objects.filter(kind=ModelVersion.Kind.RANKER, is_active=True)
        .only("pk", "artifact_path")
        .first()
    )
    loaded = _state["loaded"]
    if version is None:
        loaded = None
    elif _state["path"] != version.artifact_path or loaded is None:
        try:
            loaded = Loaded(f"v{version.pk}", ranker_load(version.artifact_path))
        except OSError:
            loaded = None  # the artifact is gone: serve without the ranker rather than fail
        if loaded is not None and not ranker_compatible(loaded.ranker):
            # trained on another feature set (an older release): the single-retrieval path until the
            # next train_model, rather than a 500
            loaded = None
    with _lock:
        _state.update(
            loaded=loaded, path=version.artifact_path if version else None, expires=now + ACTIVE_TTL_SECONDS
        )
    return loaded

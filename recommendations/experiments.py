"""A/B experiments on the serving path: which arm a visitor is in, and what that arm changes.

- **Assignment** is a hash, not a stored row: the first 8 bytes of SHA-256 of `"<experiment id>:<unit>"`
  (the unit is the user id, else the session id), modulo BUCKETS, falls in one arm's share of the
  buckets. The same visitor gets the same arm in every request and every process, with no lookup, and the
  shares are balanced (tests/recommendations/test_experiments.py: within 1% over 100,000 ids).
- **Which experiment**: the running one (inside its window) that covers the answer's surface; admin
  allows at most one running experiment per surface. A visitor with neither a user nor a session id is
  not in the experiment (no stable unit to assign), and is served as outside it.
- **A stopped (or ended) experiment** serves its control arm's configuration to everyone on its surfaces,
  unlabelled, until it is deleted or another experiment runs there.
- **What an arm changes** (`ArmConfig`): the re-ranking profile, the ranker or two-tower version, and
  candidate sources left out of the ranker's candidates. The scenarios read the current arm
  (`arm_current`), set for the duration of one answer by `recommendations.scenarios`.

Experiments are read on every request and change rarely: each process caches them for
CONFIG_TTL_SECONDS, like the profiles (an edit in admin clears the cache of the process that made it).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.utils import timezone

from recommendations import selectors
from recommendations.models import Experiment, ExperimentArm, ExperimentState, ModelVersion, RerankProfile

# Assignment resolution: shares are whole percents, so 10,000 buckets split them exactly.
BUCKETS = 10_000


@dataclass(frozen=True)
class ArmConfig:
    """What one arm serves with. `labelled` is False for a stopped experiment's control (served, but not
    counted in the experiment)."""

    experiment_id: int
    experiment: str
    variant: str
    labelled: bool = True
    is_control: bool = False
    profile: RerankProfile | None = None
    model_version: ModelVersion | None = None
    disabled_sources: frozenset[str] = frozenset()

    @property
    def ranker_version(self) -> ModelVersion | None:
        mv = self.model_version
        return mv if mv is not None and mv.kind == ModelVersion.Kind.RANKER else None

    @property
    def two_tower_version(self) -> ModelVersion | None:
        mv = self.model_version
        return mv if mv is not None and mv.kind == ModelVersion.Kind.TWO_TOWER else None


def bucket(*, experiment_id: int, unit: str) -> int:
    """The visitor's bucket in [0, BUCKETS) for this experiment: stable across processes and releases
    (not Python's salted hash())."""
    digest = hashlib.sha256(f"{experiment_id}:{unit}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def arm_index(*, experiment_id: int, unit: str, percents: Sequence[int]) -> int:
    """Which of the arms (their traffic percents, in a fixed order) this unit falls in."""
    b = bucket(experiment_id=experiment_id, unit=unit)
    edge = 0
    for i, percent in enumerate(percents):
        edge += percent * BUCKETS // 100
        if b < edge:
            return i
    return len(percents) - 1  # shares that do not sum to 100 (refused by admin): the last arm takes the rest


def arm_config(arm: ExperimentArm, *, experiment: Experiment, labelled: bool = True) -> ArmConfig:
    return ArmConfig(
        experiment_id=experiment.pk,
        experiment=experiment.name,
        variant=arm.name,
        labelled=labelled,
        is_control=arm.is_control,
        profile=arm.profile,
        model_version=arm.model_version,
        disabled_sources=frozenset(arm.disabled_sources or ()),
    )


# --- the per-process cache of running and stopped experiments

_cache: dict[str, Any] = {"expires": 0.0, "experiments": []}
_cache_lock = threading.Lock()


def experiments_cache_clear(**_kwargs: Any) -> None:
    """Forget the cached experiments (a signal receiver: any arguments)."""
    with _cache_lock:
        _cache["expires"] = 0.0


@dataclass(frozen=True)
class _Cached:
    experiment: Experiment
    arms: tuple[ExperimentArm, ...]  # in assignment order (by id)


def _experiments() -> list[_Cached]:
    with _cache_lock:
        if _cache["expires"] > time.monotonic():
            return _cache["experiments"]
    rows = (
        Experiment.objects.filter(state__in=[ExperimentState.RUNNING, ExperimentState.STOPPED])
        .prefetch_related("arms__profile", "arms__model_version")
        .order_by("starts_at", "pk")
    )
    cached = [_Cached(e, tuple(sorted(e.arms.all(), key=lambda a: a.pk))) for e in rows]
    with _cache_lock:
        _cache.update(experiments=cached, expires=time.monotonic() + selectors.CONFIG_TTL_SECONDS)
    return cached


def arm_for(
    *, surface: str, user_id: str = "", session_id: str = "", now: datetime | None = None
) -> ArmConfig | None:
    """The arm this visitor is served with on this surface, or None (no experiment applies)."""
    now = now or timezone.now()
    experiments = [c for c in _experiments() if c.arms and c.experiment.covers(surface)]
    unit = user_id or session_id
    for cached in experiments:
        if cached.experiment.live_at(now):
            if not unit:
                return None
            i = arm_index(
                experiment_id=cached.experiment.pk,
                unit=unit,
                percents=[a.traffic_percent for a in cached.arms],
            )
            return arm_config(cached.arms[i], experiment=cached.experiment)
    # stopped, or past its end: the control arm serves, unlabelled (the latest such experiment)
    ended = [
        c
        for c in experiments
        if c.experiment.state == ExperimentState.STOPPED
        or (c.experiment.ends_at is not None and c.experiment.ends_at <= now)
    ]
    if ended:
        cached = max(ended, key=lambda c: (c.experiment.ends_at or c.experiment.updated_at, c.experiment.pk))
        control = next((a for a in cached.arms if a.is_control), None)
        if control is not None:
            return arm_config(control, experiment=cached.experiment, labelled=False)
    return None


# --- the arm of the answer being served

_current: ContextVar[ArmConfig | None] = ContextVar("experiment_arm", default=None)
_override: ContextVar[ArmConfig | None] = ContextVar("experiment_arm_override", default=None)


def arm_current() -> ArmConfig | None:
    """The arm the answer being built is served with (None: outside any experiment)."""
    return _current.get()


@contextmanager
def arm_serving(arm: ArmConfig | None) -> Iterator[None]:
    token = _current.set(arm)
    try:
        yield
    finally:
        _current.reset(token)


def arm_overridden() -> ArmConfig | None:
    return _override.get()


@contextmanager
def arm_override(arm: ArmConfig) -> Iterator[None]:
    """Serve every answer in the block (previews included) with this arm: offline evaluation of an arm
    (`evaluate --arms`)."""
    token = _override.set(arm)
    try:
        yield
    finally:
        _override.reset(token)


# --- a pinned ranker version, loaded once per process

_rankers: dict[int, Any] = {}
_rankers_lock = threading.Lock()


def arm_ranker(version: ModelVersion) -> Any:
    """The ranker of this version (`recommendations.ranker.serving.Loaded`), loaded once per process; None
    when its artifact is gone or was trained on another feature set (the arm then serves without it)."""
    with _rankers_lock:
        if version.pk in _rankers:
            return _rankers[version.pk]
    from recommendations.ranker.model import ranker_load
    from recommendations.ranker.serving import Loaded, ranker_compatible

    try:
        loaded: Any = Loaded(f"v{version.pk}", ranker_load(version.artifact_path))
    except OSError:
        loaded = None
    if loaded is not None and not ranker_compatible(loaded.ranker):
        loaded = None
    with _rankers_lock:
        _rankers[version.pk] = loaded
    return loaded

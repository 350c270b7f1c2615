"""The model registry: train a version, gate it on the held-out evaluation, publish its item vectors,
activate it, roll back.

- **Gate.** One `training.evaluation.evaluation_run` (protocol and metric from settings; default
  leave-one-out, NDCG@10) scores, on the same split: the candidate (trained on that split's training
  events only), the active version (its stored model, as it would serve), and the content-only baselines
  (`content`, `user_vector`). The candidate is promoted only if it beats the active version, or, with none
  active, the best content-only baseline, by more than RECSYS_TWO_TOWER_MIN_GAIN. The model that passed is
  the model served. (The active version may have trained on some of today's test events: that favours the
  incumbent, so the gate errs toward keeping it.) The run is stored as an analytics EvaluationRun
  (`evaluation_record`, through a signal) and its id kept on the version.
- **No downtime.** A promoted version's item vectors go to their own rows (ModelItemVector) with their own
  partial HNSW index, built before the switch; the switch is one transaction flipping `is_active`.
  Serving reads the active version per request, and content vectors are never touched.
- **One at a time.** Training holds a Postgres advisory lock; a second run finds it taken and stops.
"""

from __future__ import annotations

import logging
import zlib
from dataclasses import replace
from datetime import UTC, datetime

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from catalog.selectors import items_active_pks
from recommendations.models import TWO_TOWER_DIM, ModelItemVector, ModelVersion
from recommendations.two_tower.artifacts import artifact_delete, artifact_load, artifact_save
from recommendations.two_tower.features import item_features_load
from recommendations.two_tower.serving import active_version_clear
from recommendations.two_tower.training import TrainConfig, TrainedModel
from training import evaluation  # the gate is the offline evaluation (see the module docstring)
from training.rollback import rollback_swap
from training.two_tower.evaluation import scorer_for, two_tower_factory

logger = logging.getLogger(__name__)

LOCK_KEY = zlib.crc32(b"recommendations.two_tower.training")
# Item vectors are inserted in batches of this many rows (bulk_create; 64-d vectors).
VECTOR_BATCH = 2000
CONTENT_BASELINES = ("content", "user_vector")


class TrainingBusy(Exception):
    """Another training run holds the advisory lock."""


def _setting(name: str, default):
    return getattr(settings, name, default)


def _try_lock() -> bool:
    with connection.cursor() as cur:
        cur.execute("SELECT pg_try_advisory_lock(%s)", [LOCK_KEY])
        return bool(cur.fetchone()[0])


def _unlock() -> None:
    with connection.cursor() as cur:
        cur.execute("SELECT pg_advisory_unlock(%s)", [LOCK_KEY])


def model_train_and_gate(
    *,
    window_days: float | None = None,
    seed: int | None = None,
    progress: bool = False,
    data=None,
    **overrides,
) -> ModelVersion:
    """Train a version on the last `window_days` of events, gate it, and promote it if it wins. Holds the
    training advisory lock for the whole run (raises TrainingBusy when it is taken). `overrides` are
    TrainConfig fields."""
    if not _try_lock():
        raise TrainingBusy("another two-tower training run holds the lock")
    try:
        interrupted_runs_close()
        return _train_and_gate(window_days=window_days, seed=seed, progress=progress, data=data, **overrides)
    finally:
        _unlock()


def interrupted_runs_close() -> int:
    """Mark versions still "training" as failed: called with the lock held, so no live run owns them (an
    advisory lock dies with its session); their process was killed before it could record an outcome."""
    return ModelVersion.objects.filter(
        kind=ModelVersion.Kind.TWO_TOWER, status=ModelVersion.Status.TRAINING
    ).update(
        status=ModelVersion.Status.FAILED,
        reason="interrupted: the training process stopped before recording an outcome (found by the next run)",
        updated_at=timezone.now(),
    )


def _window(data, days: float | None):
    if not days or len(data.ts) == 0:
        return data
    keep = data.ts >= float(data.ts.max()) - days * 86400.0
    return replace(
        data,
        user_ids=data.user_ids[keep],
        item_idx=data.item_idx[keep],
        ts=data.ts[keep],
        event_type=data.event_type[keep],
    )


def _train_and_gate(*, window_days, seed, progress, data, **overrides) -> ModelVersion:
    window_days = window_days if window_days is not None else _setting("RECSYS_TWO_TOWER_WINDOW_DAYS", 365.0)
    seed = seed if seed is not None else int(_setting("RECSYS_TWO_TOWER_SEED", 0))
    protocol = _setting("RECSYS_TWO_TOWER_GATE_PROTOCOL", "leave-one-out")
    metric = _setting("RECSYS_TWO_TOWER_GATE_METRIC", "ndcg@10")
    min_gain = float(_setting("RECSYS_TWO_TOWER_MIN_GAIN", 0.0))
    config = TrainConfig.from_settings(seed=seed, **overrides)
    if config.dim != TWO_TOWER_DIM:
        raise ValueError(f"dim must be {TWO_TOWER_DIM} (the vector column's dimension), not {config.dim}")

    data = _window(data if data is not None else evaluation.events_load(), window_days)
    version = ModelVersion.objects.create(
        configuration={**config.as_dict(), "window_days": window_days},
        seed=seed,
        events=len(data.ts),
        window_start=datetime.fromtimestamp(float(data.ts.min()), tz=UTC) if len(data.ts) else None,
        window_end=datetime.fromtimestamp(float(data.ts.max()), tz=UTC) if len(data.ts) else None,
        gate_metric=metric,
        gate_protocol=protocol,
    )
    try:
        return _gate(
            version,
            data=data,
            config=config,
            protocol=protocol,
            metric=metric,
            min_gain=min_gain,
            progress=progress,
        )
    except Exception as exc:
        version.status = ModelVersion.Status.FAILED
        version.reason = f"{type(exc).__name__}: {exc}"
        version.save(update_fields=["status", "reason", "updated_at"])
        raise


def _gate(version, *, data, config, protocol, metric, min_gain, progress) -> ModelVersion:
    if len(data.ts) == 0:
        raise ValueError("no events in the training window")
    captured: list[TrainedModel] = []
    extra = {
        "two_tower": two_tower_factory(
            seed=config.seed, progress=progress, on_trained=captured.append, **_overrides(config)
        )
    }
    methods = [*CONTENT_BASELINES, "two_tower"]
    incumbent = ModelVersion.objects.filter(kind=ModelVersion.Kind.TWO_TOWER, is_active=True).first()
    if incumbent is not None:
        loaded = artifact_load(incumbent.artifact_path)
        extra["two_tower_active"] = lambda d, split, stats, vectors, k=50: scorer_for(
            loaded.trained, d, split, stats
        )
        methods.append("two_tower_active")
    result = evaluation.evaluation_run(
        protocol=protocol,
        methods=methods,
        extra_scorers=extra,
        data=data,
        label=f"two-tower v{version.pk} gate",
        progress=progress,
    )
    run_id = evaluation.evaluation_record(result)
    trained = captured[0]
    run_metrics = result.metrics
    if not result.split.users:
        raise ValueError(f"no user has a test item under {protocol}: nothing to gate on")
    candidate = run_metrics["two_tower"].get(metric)
    if candidate is None:
        raise ValueError(f"the evaluation did not report {metric!r}")
    if incumbent is not None:
        reference_name, reference = f"active version v{incumbent.pk}", run_metrics["two_tower_active"][metric]
    else:
        best = max(CONTENT_BASELINES, key=lambda m: run_metrics[m][metric])
        reference_name, reference = f"content-only baseline ({best})", run_metrics[best][metric]

    version.artifact_path = str(artifact_save(trained, version_id=version.pk))
    version.evaluation_run_id = run_id
    version.metrics = {
        "evaluation": run_metrics,
        "training": trained.history,
        "best_epoch": trained.best_epoch,
        "examples": trained.examples,
        "validation_users": trained.validation_users,
    }
    version.training_seconds = trained.seconds
    version.candidate_score, version.reference_score, version.reference = candidate, reference, reference_name
    if candidate > reference + min_gain:
        version.reason = (
            f"{metric} {candidate:.4f} > {reference:.4f} of the {reference_name} ({protocol}, run #{run_id})"
        )
        version.save()
        vectors_publish(version=version, trained=trained)
        model_activate(version=version)
    else:
        version.status = ModelVersion.Status.REJECTED
        version.reason = (
            f"{metric} {candidate:.4f} does not beat {reference:.4f} of the {reference_name}"
            f"{f' by {min_gain}' if min_gain else ''} ({protocol}, run #{run_id})"
        )
        version.save()
    version.refresh_from_db()
    return version


def _overrides(config: TrainConfig) -> dict:
    values = config.as_dict()
    values.pop("seed")
    return values


def vectors_publish(*, version: ModelVersion, trained: TrainedModel) -> int:
    """The item tower's vector for every active item, written as this version's rows, then the version's
    own HNSW index, so that it is complete before anything searches it."""
    pks = items_active_pks()
    features = item_features_load(
        item_pks=pks, cat_buckets=trained.config.cat_buckets, brand_buckets=trained.config.brand_buckets
    )
    vectors = trained.item_vectors(features)
    ModelItemVector.objects.filter(version=version).delete()
    rows = [
        ModelItemVector(version_id=version.pk, item_id=pk, embedding=v)
        for pk, v in zip(pks, vectors, strict=True)
    ]
    for start in range(0, len(rows), VECTOR_BATCH):
        ModelItemVector.objects.bulk_create(rows[start : start + VECTOR_BATCH])
    _index_create(version.pk)
    version.item_vectors = len(rows)
    version.save(update_fields=["item_vectors", "updated_at"])
    return len(rows)


def _index_name(version_id: int) -> str:
    return f"two_tower_hnsw_v{int(version_id)}"


def _index_create(version_id: int) -> None:
    # CONCURRENTLY lets the signal receiver keep writing new items' vectors during the build; it cannot run
    # inside a transaction (tests), where a plain build is used: reads are never blocked by either.
    concurrently = "" if connection.in_atomic_block else "CONCURRENTLY"
    with connection.cursor() as cur:
        if connection.in_atomic_block:  # deferred FK checks of the rows just written must run first
            cur.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cur.execute(
            f"CREATE INDEX {concurrently} IF NOT EXISTS {_index_name(version_id)} ON recommendations_modelitemvector "
            f"USING hnsw (embedding vector_cosine_ops) WHERE version_id = {int(version_id)}"
        )


def _index_drop(version_id: int) -> None:
    with connection.cursor() as cur:
        cur.execute(f"DROP INDEX IF EXISTS {_index_name(version_id)}")


def model_activate(*, version: ModelVersion, reason: str = "") -> None:
    """Make `version` the one active version (one transaction), then prune old vector sets."""
    with transaction.atomic():
        ModelVersion.objects.select_for_update().filter(
            kind=ModelVersion.Kind.TWO_TOWER, is_active=True
        ).exclude(pk=version.pk).update(is_active=False, updated_at=timezone.now())
        version.is_active = True
        version.status = ModelVersion.Status.PROMOTED
        version.activated_at = timezone.now()
        if reason:
            version.reason = reason
        version.save()
    active_version_clear()
    _vectors_prune(keep=int(_setting("RECSYS_TWO_TOWER_KEEP_VERSIONS", 3)))


def _vectors_prune(*, keep: int) -> None:
    """Drop the vectors and index of promoted versions beyond the `keep` most recently activated (the
    active one always stays): what rollback can go back to."""
    kept = list(
        ModelVersion.objects.filter(item_vectors__gt=0)
        .order_by("-is_active", "-activated_at")
        .values_list("pk", flat=True)
    )
    for pk in kept[max(keep, 1) :]:
        _index_drop(pk)
        ModelItemVector.objects.filter(version_id=pk).delete()
        ModelVersion.objects.filter(pk=pk).update(item_vectors=0, updated_at=timezone.now())


def model_rollback(*, to_version_id: int | None = None) -> ModelVersion | None:
    """Deactivate the active version and activate the previous one that still has its vectors (or
    `to_version_id`). With nothing to go back to, no version stays active: serving uses content vectors.
    Returns the version now active (or None)."""
    with transaction.atomic():
        current = (
            ModelVersion.objects.select_for_update()
            .filter(kind=ModelVersion.Kind.TWO_TOWER, is_active=True)
            .first()
        )
        if to_version_id is not None:
            target = ModelVersion.objects.filter(pk=to_version_id).first()
            if target is None:
                raise ValueError(f"no model version {to_version_id}")
            if target.item_vectors == 0 or not target.artifact_path:
                raise ValueError(
                    f"version {to_version_id} has no published vectors to serve (rejected or pruned)"
                )
        else:
            # a version rolled back from is not gone back to (unless named with `to_version_id`)
            candidates = ModelVersion.objects.filter(
                kind=ModelVersion.Kind.TWO_TOWER, item_vectors__gt=0, activated_at__isnull=False
            ).exclude(status=ModelVersion.Status.ROLLED_BACK)
            if current is not None:
                candidates = candidates.exclude(pk=current.pk).filter(activated_at__lt=current.activated_at)
            target = candidates.order_by("-activated_at").first()
        rollback_swap(current=current, target=target, fallback="content-only vectors")
    active_version_clear()
    return target


def vectors_refresh_items(*, item_pks: list[int]) -> int:
    """Catalog changes (new items, new content vectors) reach the active version: the item tower computes
    their vectors (from content, category, brand and price alone for an item it never saw). Items that
    are gone or inactive are left to the retrieval filters."""
    version = ModelVersion.objects.filter(kind=ModelVersion.Kind.TWO_TOWER, is_active=True).first()
    if version is None or not item_pks:
        return 0
    trained = artifact_load(version.artifact_path).trained
    pks = items_active_pks(among=item_pks)
    if not pks:
        return 0
    features = item_features_load(
        item_pks=pks, cat_buckets=trained.config.cat_buckets, brand_buckets=trained.config.brand_buckets
    )
    vectors = trained.item_vectors(features)
    ModelItemVector.objects.bulk_create(
        [
            ModelItemVector(version_id=version.pk, item_id=pk, embedding=v)
            for pk, v in zip(pks, vectors, strict=True)
        ],
        update_conflicts=True,
        unique_fields=["version", "item"],
        update_fields=["embedding", "updated_at"],
    )
    return len(pks)


def versions_delete_artifacts(*, version_ids: list[int]) -> None:
    for path in ModelVersion.objects.filter(pk__in=version_ids).values_list("artifact_path", flat=True):
        artifact_delete(path)


__all__ = [
    "LOCK_KEY",
    "TrainingBusy",
    "model_activate",
    "model_rollback",
    "model_train_and_gate",
    "np",
    "vectors_publish",
    "vectors_refresh_items",
]

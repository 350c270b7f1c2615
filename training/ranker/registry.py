"""The ranker's versions in the model registry (ModelVersion, kind "ranker"): train, gate, activate,
roll back, the same way as the two-tower model's (training/two_tower/registry.py).

- **Gate.** One `training.evaluation.evaluation_run` (protocol and metric from the two-tower's settings)
  scores, on the same split and users: `served` with the candidate ranker (trained on that split's training
  events only, through its own inner time cut), and the reference: `served` with the active ranker's
  stored model when one is active, else the single-retrieval path it would replace
  (`served_single_retrieval`). The candidate is activated only if it beats the reference by more than
  RECSYS_RANKER_MIN_GAIN. The model that passed is the model served. The run is stored as an analytics
  EvaluationRun (`evaluation_record`) and its id kept on the version.
- **One at a time.** A Postgres advisory lock of its own.
"""

from __future__ import annotations

import functools
import zlib
from datetime import UTC, datetime

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from recommendations.models import ModelVersion
from recommendations.ranker.model import ranker_load, ranker_save
from recommendations.ranker.serving import active_ranker_clear
from training import evaluation  # the gate is the offline evaluation
from training.ranker.evaluation import ranker_methods
from training.rollback import rollback_swap
from training.served_recommender import served_scorer_factory

LOCK_KEY = zlib.crc32(b"training.ranker.training")
KIND = ModelVersion.Kind.RANKER


class TrainingBusy(Exception):
    """Another ranker training run holds the advisory lock."""


def _setting(name: str, default):
    return getattr(settings, name, default)


def ranker_train_and_gate(*, seed: int | None = None, progress: bool = False, data=None) -> ModelVersion:
    with connection.cursor() as cur:
        cur.execute("SELECT pg_try_advisory_lock(%s)", [LOCK_KEY])
        if not cur.fetchone()[0]:
            raise TrainingBusy("another ranker training run holds the lock")
    try:
        # a version left `training` by a killed run: no live run owns it (we hold the lock)
        ModelVersion.objects.filter(kind=KIND, status=ModelVersion.Status.TRAINING).update(
            status=ModelVersion.Status.FAILED, reason="interrupted", updated_at=timezone.now()
        )
        return _train_and_gate(seed=seed, progress=progress, data=data)
    finally:
        with connection.cursor() as cur:
            cur.execute("SELECT pg_advisory_unlock(%s)", [LOCK_KEY])


def _train_and_gate(*, seed, progress, data) -> ModelVersion:
    seed = seed if seed is not None else int(_setting("RECSYS_TWO_TOWER_SEED", 0))
    protocol = _setting("RECSYS_TWO_TOWER_GATE_PROTOCOL", "leave-one-out")
    metric = _setting("RECSYS_TWO_TOWER_GATE_METRIC", "ndcg@10")
    min_gain = float(_setting("RECSYS_RANKER_MIN_GAIN", 0.0))
    gate_users = _setting("RECSYS_RANKER_GATE_USERS", 2000)
    data = data if data is not None else evaluation.events_load()
    version = ModelVersion.objects.create(
        kind=KIND,
        seed=seed,
        events=len(data.ts),
        window_start=datetime.fromtimestamp(float(data.ts.min()), tz=UTC) if len(data.ts) else None,
        window_end=datetime.fromtimestamp(float(data.ts.max()), tz=UTC) if len(data.ts) else None,
        gate_metric=metric,
        gate_protocol=protocol,
    )
    try:
        if len(data.ts) == 0:
            raise ValueError("no events to train the ranker on")
        passes: list = []
        fit = {"horizon_days": float(_setting("RECSYS_RANKER_HORIZON_DAYS", 14.0))}
        extra = dict(ranker_methods(seed=seed, progress=progress, holder=passes, **fit))
        methods = ["served"]
        incumbent = ModelVersion.objects.filter(kind=KIND, is_active=True).first()
        if incumbent is not None:
            active = ranker_load(incumbent.artifact_path)
            extra["served_active"] = ranker_methods(ranker=active, progress=progress)["served"]
            methods.append("served_active")
        else:
            extra["served_single_retrieval"] = functools.partial(served_scorer_factory, progress=progress)
            methods.append("served_single_retrieval")
        result = evaluation.evaluation_run(
            protocol=protocol,
            methods=methods,
            extra_scorers=extra,
            data=data,
            label=f"ranker v{version.pk} gate",
            progress=progress,
            max_users=gate_users,
        )
        run_id = evaluation.evaluation_record(result)
        if not result.split.users:
            raise ValueError(f"no user has a test item under {protocol}: nothing to gate on")
        run_metrics = result.metrics
        ranker = passes[0].ranker
        if ranker is None:
            raise ValueError(passes[0].unavailable or "the ranker could not be trained")
        candidate = run_metrics["served"][metric]
        reference_method = methods[1]
        reference = run_metrics[reference_method][metric]
        reference_name = (
            f"active version v{incumbent.pk}" if incumbent is not None else "the single-retrieval path"
        )
        version.artifact_path = str(ranker_save(ranker, name=f"v{version.pk}"))
        version.configuration = {"sources": list(ranker.sources), "params": ranker.info.get("params", {})}
        version.metrics = {
            "evaluation": run_metrics,
            "training": {k: v for k, v in ranker.info.items() if k != "params"},
        }
        version.evaluation_run_id = run_id
        version.candidate_score, version.reference_score, version.reference = (
            candidate,
            reference,
            reference_name,
        )
        if candidate > reference + min_gain:
            version.reason = (
                f"{metric} {candidate:.4f} > {reference:.4f} of {reference_name} ({protocol}, run #{run_id})"
            )
            version.save()
            ranker_activate(version=version)
        else:
            version.status = ModelVersion.Status.REJECTED
            version.reason = (
                f"{metric} {candidate:.4f} does not beat {reference:.4f} of {reference_name}"
                f"{f' by {min_gain}' if min_gain else ''} ({protocol}, run #{run_id})"
            )
            version.save()
    except Exception as exc:
        version.status = ModelVersion.Status.FAILED
        version.reason = f"{type(exc).__name__}: {exc}"
        version.save(update_fields=["status", "reason", "updated_at"])
        raise
    version.refresh_from_db()
    return version


def ranker_activate(*, version: ModelVersion, reason: str = "") -> None:
    with transaction.atomic():
        ModelVersion.objects.select_for_update().filter(kind=KIND, is_active=True).exclude(
            pk=version.pk
        ).update(is_active=False, updated_at=timezone.now())
        version.is_active = True
        version.status = ModelVersion.Status.PROMOTED
        version.activated_at = timezone.now()
        if reason:
            version.reason = reason
        version.save()
    active_ranker_clear()


def ranker_rollback(*, to_version_id: int | None = None) -> ModelVersion | None:
    """Deactivate the active ranker and activate the previous promoted one (or `to_version_id`). With
    nothing to go back to, none stays active: serving uses the single-retrieval path."""
    with transaction.atomic():
        current = ModelVersion.objects.select_for_update().filter(kind=KIND, is_active=True).first()
        if to_version_id is not None:
            target = ModelVersion.objects.filter(kind=KIND, pk=to_version_id).first()
            if target is None or not target.artifact_path or target.activated_at is None:
                raise ValueError(f"no ranker version {to_version_id} that was ever served")
        else:
            candidates = ModelVersion.objects.filter(kind=KIND, activated_at__isnull=False).exclude(
                status=ModelVersion.Status.ROLLED_BACK
            )
            if current is not None:
                candidates = candidates.exclude(pk=current.pk).filter(activated_at__lt=current.activated_at)
            target = candidates.exclude(artifact_path="").order_by("-activated_at").first()
        rollback_swap(current=current, target=target, fallback="the single-retrieval path")
    active_ranker_clear()
    return target

"""Writes of analytics' evaluation runs: a result of the offline evaluation (`training.evaluation`) saved as
an EvaluationRun (by `evaluate`, the report page's jobs and the training app's gates), and an evaluation
started from the report page, as a Celery job."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import TypedDict

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from analytics.models import EvaluationJob, EvaluationJobStatus, EvaluationRun
from training import evaluation

logger = logging.getLogger(__name__)


# The page's runs: "quick" scores the baselines (seconds on the demo shop); "full" adds the served path on
# a fixed sample of users (serving is replayed per user: ~1 min for 200 users on 2 shared cores).
class JobScope(TypedDict):
    methods: list[str]
    max_users: int | None


JOB_SCOPES: dict[str, JobScope] = {
    "quick": {"methods": list(evaluation.BASELINES), "max_users": None},
    "full": {"methods": [*evaluation.BASELINES, "served_single_retrieval"], "max_users": 200},
}
# A running job with no progress for this long was lost with its worker: it may be claimed again.
JOB_STALE_AFTER = timedelta(minutes=10)
# One evaluation at a time (two would compete for the same 2 cores): any constant unique to this job.
JOB_LOCK_ID = 0x52455645  # "REVE"
# Progress is written at most this often (each write is a commit the page can read).
PROGRESS_EVERY = timedelta(seconds=1)


def evaluation_run_save(*, result: evaluation.EvaluationResult) -> EvaluationRun:
    """Store one offline evaluation's result as an EvaluationRun."""
    return EvaluationRun.objects.create(
        protocol=result.protocol,
        dataset_fingerprint=result.dataset_fingerprint,
        configuration=result.configuration,
        metrics=result.metrics,
        summary=result.summary,
        duration_seconds=result.duration_seconds,
        label=result.label,
    )


def on_evaluation_finished(sender, *, result: evaluation.EvaluationResult, **kwargs) -> int:
    """Receiver of training's `evaluation_finished` (a model's gate): the run is stored, and its id goes
    back to the gate, which keeps it on the model version."""
    return evaluation_run_save(result=result).pk


def evaluation_job_start(*, scope: str, requested_by: str) -> EvaluationJob:
    """Queue an evaluation (`scope` is a key of JOB_SCOPES, checked by the caller). The task is sent on
    commit, so the worker never looks for a job that is not there yet."""
    from analytics.tasks import evaluation_job_maintenance_task

    job = EvaluationJob.objects.create(scope=scope, requested_by=requested_by)
    transaction.on_commit(lambda: evaluation_job_maintenance_task.delay(job.pk))
    return job


def evaluation_job_claim(*, job_id: int) -> bool:
    """Claim a queued (or lost) job for this worker: a conditional UPDATE, so a task delivered twice runs
    the job once."""
    stale = timezone.now() - JOB_STALE_AFTER
    return bool(
        EvaluationJob.objects.filter(
            Q(status=EvaluationJobStatus.QUEUED)
            | Q(status=EvaluationJobStatus.RUNNING, updated_at__lt=stale),
            pk=job_id,
        ).update(
            status=EvaluationJobStatus.RUNNING, started_at=timezone.now(), progress=0.0, message="starting"
        )
    )


def evaluation_job_execute(*, job_id: int) -> str:
    """Run a claimed job: the temporal protocol over the events in the database, with the job's methods,
    progress written as it goes, then `done` with the saved run, or `failed` with the reason. Holds an
    advisory lock (session level, not a transaction: progress commits as it goes) so that only one
    evaluation runs at a time; returns "busy" without claiming when another holds it."""
    with connection.cursor() as cur:
        cur.execute("SELECT pg_try_advisory_lock(%s)", [JOB_LOCK_ID])
        if not cur.fetchone()[0]:
            return "busy"
    try:
        if not evaluation_job_claim(job_id=job_id):
            return "not claimed"
        job = EvaluationJob.objects.get(pk=job_id)
        scope = JOB_SCOPES.get(job.scope, JOB_SCOPES["quick"])
        last = {"at": timezone.now() - PROGRESS_EVERY}

        def progress(fraction: float, what: str) -> None:
            now = timezone.now()
            if now - last["at"] >= PROGRESS_EVERY:
                last["at"] = now
                EvaluationJob.objects.filter(pk=job_id).update(
                    progress=round(min(fraction, 0.99), 3), message=f"ranking: {what}", updated_at=now
                )

        try:
            extra: dict[str, Callable[..., evaluation.Scorer]] = {}
            if "served_single_retrieval" in scope["methods"]:
                from training.served_recommender import served_scorer_factory

                extra["served_single_retrieval"] = functools.partial(served_scorer_factory, progress=False)
            result = evaluation.evaluation_run(
                protocol="temporal",
                methods=scope["methods"],
                extra_scorers=extra,
                label=f"from the report page ({job.requested_by or 'staff'})",
                progress=False,
                max_users=scope["max_users"],
                on_progress=progress,
            )
            run = evaluation_run_save(result=result)
        except Exception as exc:  # noqa: BLE001 - the page shows why; the worker stays up
            logger.exception("evaluation job %s failed", job_id)
            EvaluationJob.objects.filter(pk=job_id).update(
                status=EvaluationJobStatus.FAILED, message=str(exc)[:300], finished_at=timezone.now()
            )
            return "failed"
        users = run.summary["users_evaluated"]
        EvaluationJob.objects.filter(pk=job_id).update(
            status=EvaluationJobStatus.DONE,
            progress=1.0,
            run=run,
            message=f"run #{run.pk}: {users} users evaluated" if users else "no user has a test item",
            finished_at=timezone.now(),
        )
        return "done"
    finally:
        with connection.cursor() as cur:
            cur.execute("SELECT pg_advisory_unlock(%s)", [JOB_LOCK_ID])

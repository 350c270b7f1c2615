"""Evaluation from the report page: staff start a run, a Celery task runs it with progress, the page
follows it to the end."""

from __future__ import annotations

import pytest

from analytics.models import EvaluationJob, EvaluationRun
from analytics.services import evaluation_job_claim
from analytics.tasks import evaluation_job_maintenance_task
from demo.shop import DemoShop, demo_shop_load
from training import evaluation

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop():
    shop = DemoShop(items=80, users=40, seed=5)
    demo_shop_load(shop=shop)
    return shop


@pytest.fixture
def staff(client, django_user_model):
    user = django_user_model.objects.create_user("analyst", password="pw-analyst-1", is_staff=True)
    client.force_login(user)
    return client


def test_staff_start_a_run_and_the_page_follows_it(staff, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as sent:
        response = staff.post("/reports/evaluations/start", {"scope": "quick"})
    job = EvaluationJob.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/reports/evaluations?job={job.pk}"
    assert len(sent) == 1  # the task is sent once the job row is committed
    assert (job.status, job.scope, job.requested_by) == ("queued", "quick", "analyst")
    page = staff.get(response["Location"]).content.decode()
    assert f'data-job-url="/reports/evaluations/jobs/{job.pk}"' in page and 'data-status="queued"' in page
    state = staff.get(f"/reports/evaluations/jobs/{job.pk}").json()
    assert (state["status"], state["progress"], state["run_id"]) == ("queued", 0.0, None)
    assert staff.get("/reports/evaluations/jobs/999999").status_code == 404


def test_only_staff_start_runs_and_the_scope_is_checked(client, staff):
    assert staff.post("/reports/evaluations/start", {"scope": "everything"}).status_code == 400
    assert staff.get("/reports/evaluations/start").status_code == 405
    client.logout()
    assert client.post("/reports/evaluations/start", {"scope": "quick"}).status_code == 302  # to the login
    assert client.get("/reports/evaluations/jobs/1").status_code == 302
    assert not EvaluationJob.objects.exists()


def test_the_task_runs_the_job_once_and_saves_the_run(shop):
    job = EvaluationJob.objects.create(scope="quick", requested_by="analyst")
    assert evaluation_job_maintenance_task.apply(args=[job.pk]).get() == "done"
    job.refresh_from_db()
    run = EvaluationRun.objects.get()
    assert (job.status, job.progress, job.run_id) == ("done", 1.0, run.pk)
    assert sorted(run.metrics) == sorted(evaluation.BASELINES)
    assert job.finished_at is not None and "users evaluated" in job.message
    # delivered twice: the second delivery finds it claimed and does nothing
    assert evaluation_job_maintenance_task.apply(args=[job.pk]).get() == "not claimed"
    assert EvaluationRun.objects.count() == 1


def test_a_failed_run_says_why(db):
    job = EvaluationJob.objects.create(scope="quick")
    assert evaluation_job_maintenance_task.apply(args=[job.pk]).get() == "failed"
    job.refresh_from_db()
    assert job.status == "failed" and job.message  # no events: nothing to split


def test_a_lost_job_can_be_claimed_again(db):
    job = EvaluationJob.objects.create(scope="quick")
    assert evaluation_job_claim(job_id=job.pk)
    assert not evaluation_job_claim(job_id=job.pk)  # running, and fresh
    EvaluationJob.objects.filter(pk=job.pk).update(updated_at=job.created_at.replace(year=2000))
    assert evaluation_job_claim(job_id=job.pk)


def test_progress_rises_to_the_end_method_by_method(shop):
    seen: list[tuple[float, str]] = []
    evaluation.evaluation_run(
        protocol="temporal",
        methods=["popularity", "content"],
        progress=False,
        on_progress=lambda f, w: seen.append((f, w)),
    )
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[0] == 0.0 and fractions[-1] == pytest.approx(1.0)
    assert [w for _, w in seen][0] == "popularity" and seen[-1][1] == "content"

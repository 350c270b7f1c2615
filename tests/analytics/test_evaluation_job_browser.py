"""Evaluation from the page, in a real Chromium: staff start a run, the page shows it queued, follows its
progress while the Celery task runs (here run by the test in the worker's place), and links the run."""

from __future__ import annotations

import threading

from analytics.models import EvaluationJob
from analytics.tasks import evaluation_job_maintenance_task
from demo.shop import DemoShop, demo_shop_load
from tests.browser import OUTPUT, needs_chromium, wait_for

pytestmark = needs_chromium


def test_staff_start_an_evaluation_from_the_page_and_see_it_finish(
    live_server, transactional_db, browser, django_user_model
):
    demo_shop_load(shop=DemoShop(items=120, users=60, seed=11))
    django_user_model.objects.create_user("analyst", password="pw-analyst-1", is_staff=True)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(live_server.url + "/admin/login/?next=/reports/evaluations")
    page.fill("#id_username", "analyst")
    page.fill("#id_password", "pw-analyst-1")
    page.click("input[type=submit]")
    page.wait_for_url("**/reports/evaluations", timeout=15000)
    assert page.locator("text=No evaluation run yet.").count() == 1

    page.click("text=Start an evaluation run")
    page.wait_for_url("**/reports/evaluations?job=*", timeout=15000)
    assert page.locator(".job-status").inner_text() == "queued"
    assert page.locator(".start-evaluation button").is_disabled()
    page.screenshot(path=str(OUTPUT / "evaluation-job-queued.png"), full_page=True)

    job = EvaluationJob.objects.get()
    worker = threading.Thread(target=lambda: evaluation_job_maintenance_task.apply(args=[job.pk]))
    worker.start()
    page.wait_for_selector('.evaluation-job[data-status="done"]', timeout=60000)
    worker.join(timeout=60)
    job.refresh_from_db()
    assert job.status == "done" and job.run_id
    link = page.locator(".job-run")
    assert link.is_visible() and link.inner_text() == f"See run #{job.run_id}"
    assert page.locator("progress").evaluate("p => p.value") == 1
    page.screenshot(path=str(OUTPUT / "evaluation-job-done.png"), full_page=True)
    link.click()
    page.wait_for_selector('#evaluation-chart[data-rendered="true"]', timeout=15000)
    assert wait_for(lambda: page.locator("text=No evaluation run yet.").count() == 0)
    page.close()

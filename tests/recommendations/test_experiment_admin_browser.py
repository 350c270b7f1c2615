"""A merchandiser's A/B experiment end to end, in a real headless Chromium: created with two arms in admin
as a draft (which serves nobody), started, served to shoppers on the storefront, then read on its report,
reached from the experiment's page: the lists per arm and their latency guardrail."""

from __future__ import annotations

import pytest

from recommendations.experiments import experiments_cache_clear
from recommendations.models import Experiment, ExperimentState, RerankProfile, ServedList
from tests.browser import OUTPUT, needs_chromium
from tests.factories import ItemFactory, topic

pytestmark = needs_chromium
SHOPPERS = 6


@pytest.fixture(autouse=True)
def experiments_cache_fresh():
    """The experiments are cached per process: each test starts and ends without a stale one."""
    experiments_cache_clear()
    yield
    experiments_cache_clear()


def _shoppers_visit_home(browser, url: str, n: int) -> None:
    """n new visitors (each its own cookies, so its own session) open the home page and get its lists."""
    for _ in range(n):
        context = browser.new_context()
        page = context.new_page()
        page.goto(url + "/")
        page.wait_for_selector("#for-you .card", timeout=20000)
        context.close()


def test_an_experiment_made_in_admin_is_started_served_and_reported(
    live_server, transactional_db, browser, django_user_model
):
    for i in range(16):
        ItemFactory(external_id=f"it-{i}", embedding=topic(i % 6, jitter=0.2, seed=i))
    RerankProfile.objects.create(surface="home")
    RerankProfile.objects.create(surface="exp-home-variety", mmr_lambda=0.7)
    django_user_model.objects.create_superuser("merch", "merch@example.com", "pw-merch-123")

    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(live_server.url + "/admin/login/?next=/admin/recommendations/experiment/add/")
    page.fill("#id_username", "merch")
    page.fill("#id_password", "pw-merch-123")
    page.click("input[type=submit]")
    page.wait_for_url("**/experiment/add/", timeout=15000)
    # docs/experiments.md, step 2: a draft with two arms
    page.fill("#id_name", "home-variety")
    page.fill("#id_description", "More variety on the home page does not cost clicks")
    page.fill("#id_surfaces", "home")
    page.fill("#id_arms-0-name", "control")
    page.check("#id_arms-0-is_control")
    page.fill("#id_arms-0-traffic_percent", "50")
    page.fill("#id_arms-1-name", "B")
    page.fill("#id_arms-1-traffic_percent", "50")
    page.select_option("#id_arms-1-profile", label="exp-home-variety (v1)")
    page.click("input[name=_continue]")
    page.wait_for_url("**/experiment/*/change/", timeout=15000)
    experiment = Experiment.objects.get(name="home-variety")
    assert experiment.state == ExperimentState.DRAFT and experiment.arms.count() == 2

    _shoppers_visit_home(browser, live_server.url, 1)
    assert not ServedList.objects.filter(experiment__isnull=False).exists()  # a draft serves nobody

    # step 4: start it
    page.select_option("#id_state", "running")
    page.click("input[name=_continue]")
    page.wait_for_selector(".messagelist .success", timeout=15000)
    assert Experiment.objects.get(pk=experiment.pk).state == ExperimentState.RUNNING
    experiments_cache_clear()  # the live server's thread shares this process: no 2 s wait for the cache

    _shoppers_visit_home(browser, live_server.url, SHOPPERS)
    served = list(ServedList.objects.filter(experiment=experiment.pk).values_list("variant", "latency_ms"))
    assert len(served) == SHOPPERS and {v for v, _ in served} <= {"control", "B"}
    assert all(ms > 0 for _, ms in served)

    # step 5: the report, from the experiment's own page
    page.click(".field-report a")
    page.wait_for_url(f"**/reports/experiments?experiment={experiment.pk}", timeout=15000)
    guardrails = page.locator("#table-experiment_guardrails")
    header = guardrails.locator("thead th").all_inner_texts()
    rows = {
        cells[0]: dict(zip(header, cells, strict=True))
        for cells in (row.locator("td").all_inner_texts() for row in guardrails.locator("tbody tr").all())
    }
    assert set(rows) == {"control", "B"}
    assert sum(int(r["lists served"]) for r in rows.values()) == SHOPPERS
    for arm, row in rows.items():
        lists = sum(1 for v, _ in served if v == arm)
        assert row["lists timed"] == str(lists)
        if lists:  # the hash may put all six shoppers in one arm
            assert float(row["p95 latency ms"]) >= float(row["p50 latency ms"]) > 0
        else:
            assert row["p95 latency ms"] == "no data"
    page.screenshot(path=str(OUTPUT / "experiment-admin-to-report.png"), full_page=True)
    page.close()

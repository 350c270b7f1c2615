"""The A/B experiment report in a real headless Chromium: the verdict, the charts per arm, the form."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from analytics.attribution import events_attribute_recent
from interactions.models import Event
from recommendations.experiments import experiments_cache_clear
from recommendations.models import Experiment, ExperimentArm, ExperimentState, ServedList
from tests.browser import OUTPUT, needs_chromium
from tests.factories import ItemFactory

pytestmark = needs_chromium


@pytest.fixture(autouse=True)
def experiments_cache_fresh():
    """The experiments are cached per process: each test starts and ends without a stale one."""
    experiments_cache_clear()
    yield
    experiments_cache_clear()


def _traffic(experiment: Experiment, *, lists: int, clicked: dict[str, int], bought: dict[str, int]) -> None:
    """`lists` served lists per arm; the first clicked[arm] of them clicked, the first bought[arm] of those
    bought (one item at 20.00). Serve times: control 12.5 ms each, B 20 ms for the first half and 40 ms for
    the rest."""
    items = [
        ItemFactory(category_path=[], embedding=None, published_at=None, external_id=f"item-{i}")
        for i in range(6)
    ]
    now = timezone.now()
    at = now - timedelta(hours=2)
    served, events = [], []
    for variant in ("control", "B"):
        for n in range(lists):
            shown = items[n % 3 : n % 3 + 3] if variant == "control" else items[n % 6 :] + items[: n % 6][:2]
            rec = uuid.uuid4()
            served.append(
                ServedList(recommendation_id=rec, user_id=f"{variant}-{n}", surface="home", scenario="user",
                           experiment=experiment.pk, variant=variant, item_pks=[i.pk for i in shown],
                           item_ids=[i.external_id for i in shown],
                           latency_ms=12.5 if variant == "control" else (20.0 if n < lists // 2 else 40.0))
            )  # fmt: skip
            if n < clicked[variant]:
                item = shown[0]
                events.append(Event(event_id=f"c-{rec}", user_id=f"{variant}-{n}", session_id="", item=item,
                                    item_external_id=item.external_id, event_type="click", recommendation_id=rec,
                                    timestamp=at))  # fmt: skip
                if n < bought[variant]:
                    events.append(Event(event_id=f"p-{rec}", user_id=f"{variant}-{n}", session_id="", item=item,
                                        item_external_id=item.external_id, event_type="purchase", value=20,
                                        quantity=1, timestamp=at + timedelta(minutes=3)))  # fmt: skip
    ServedList.objects.bulk_create(served)
    Event.objects.bulk_create(events)
    events_attribute_recent()


def test_experiment_report_shows_the_verdict_and_a_chart_per_arm(
    live_server, transactional_db, browser, django_user_model
):
    experiment = Experiment.objects.create(
        name="home-diversity",
        description="Turning diversity up on the home page does not cost clicks.",
        state=ExperimentState.RUNNING,
        surfaces=["home"],
        starts_at=timezone.now() - timedelta(days=3),
    )
    ExperimentArm.objects.create(experiment=experiment, name="control", is_control=True, traffic_percent=50)
    ExperimentArm.objects.create(experiment=experiment, name="B", traffic_percent=50)
    # CTR 10% against 15% over 1,000 lists each: +50% is detectable with 686 lists per arm, and p < 0.001
    _traffic(experiment, lists=1000, clicked={"control": 100, "B": 150}, bought={"control": 20, "B": 24})
    django_user_model.objects.create_user("analyst", password="pw-analyst-1", is_staff=True)

    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    page.goto(live_server.url + "/admin/login/?next=/reports/experiments")
    page.fill("#id_username", "analyst")
    page.fill("#id_password", "pw-analyst-1")
    page.click("input[type=submit]")
    page.wait_for_url("**/reports/experiments", timeout=15000)
    page.fill("input[name=mde]", "50")
    page.click("#experiment-form button[type=submit]")
    page.wait_for_url("**/reports/experiments?*mde=50*", timeout=15000)
    for chart in ("experiment-rates-chart", "experiment-revenue-chart"):
        page.wait_for_selector(f'#{chart}[data-rendered="true"]', timeout=15000)
        box = page.locator(f"#{chart}").bounding_box()
        assert box and box["width"] > 100 and box["height"] > 100
    assert page.evaluate("() => Chart.getChart('experiment-rates-chart').data.labels") == ["control", "B"]
    ctr = page.evaluate("() => Chart.getChart('experiment-rates-chart').data.datasets[0].data")
    assert ctr == [0.1, 0.15]
    verdict = page.inner_text("#verdict-B")
    assert verdict.startswith("B better by 50.0% (CI +"), verdict
    guardrails = page.locator("#table-experiment_guardrails")
    assert guardrails.is_visible()
    header = guardrails.locator("thead th").all_inner_texts()
    latency = {
        cells[0]: dict(zip(header, cells, strict=True))
        for cells in (row.locator("td").all_inner_texts() for row in guardrails.locator("tbody tr").all())
    }
    # B's p50 falls between its 499th and 500th of 1,000 sorted serve times (20 and 40 ms): 30
    assert {arm: (c["p50 latency ms"], c["p95 latency ms"]) for arm, c in latency.items()} == {
        "control": ("12.5", "12.5"),
        "B": ("30.0", "40.0"),
    }
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / "reports-experiments.png"), full_page=True)
    guardrails.screenshot(path=str(OUTPUT / "reports-experiments-guardrails.png"))

    # deciding on conversions instead: 2% against 2.4% over 1,000 lists is far too little data
    page.select_option("select[name=metric]", "conversion")
    page.click("#experiment-form button[type=submit]")
    page.wait_for_url("**/reports/experiments?*metric=conversion*", timeout=15000)
    assert page.inner_text("#verdict-B") == "not enough data"
    page.close()

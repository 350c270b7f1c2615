"""Attribution by arm and the /reports/experiments page: counts per arm, the tests against the control,
CSV export, staff only, and a 400 that names the field for a bad question."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from analytics.attribution import events_attribute_recent
from analytics.experiments import arms_collect, experiment_report
from analytics.models import Attribution
from recommendations.experiments import experiments_cache_clear
from recommendations.models import Experiment, ExperimentArm, ExperimentState
from tests.factories import EventFactory, ItemFactory, served_list

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_experiments():
    experiments_cache_clear()
    yield
    experiments_cache_clear()


@pytest.fixture
def experiment():
    e = Experiment.objects.create(
        name="home-mmr",
        state=ExperimentState.RUNNING,
        surfaces=["home"],
        starts_at=timezone.now() - timedelta(days=2),
    )
    ExperimentArm.objects.create(experiment=e, name="control", is_control=True, traffic_percent=50)
    ExperimentArm.objects.create(experiment=e, name="B", traffic_percent=50)
    return e


@pytest.fixture
def traffic(experiment):
    """control: 4 lists, 1 clicked, no purchase. B: 4 lists, 2 clicked, one of them bought (2 x 15.00)."""
    now = timezone.now()
    lamp, rake = (
        ItemFactory(category_path=[], embedding=None, published_at=None, external_id="lamp"),
        ItemFactory(category_path=[], embedding=None, published_at=None, external_id="rake"),
    )
    lists = {"control": [], "B": []}
    for variant in lists:
        for n in range(4):
            lists[variant].append(
                served_list(
                    [lamp, rake],
                    surface="home",
                    user_id=f"{variant}-{n}",
                    experiment=experiment.pk,
                    variant=variant,
                    created_at=now - timedelta(hours=3),
                )
            )
    at = now - timedelta(hours=2)
    EventFactory(session_id="s1", item=lamp, user_id="control-0", event_type="click",
                 recommendation_id=lists["control"][0].recommendation_id, timestamp=at)  # fmt: skip
    EventFactory(session_id="s1", item=rake, user_id="B-0", event_type="click",
                 recommendation_id=lists["B"][0].recommendation_id, timestamp=at)  # fmt: skip
    EventFactory(session_id="s1", item=lamp, user_id="B-1", event_type="click",
                 recommendation_id=lists["B"][1].recommendation_id, timestamp=at)  # fmt: skip
    EventFactory(session_id="s1", item=rake, user_id="B-0", event_type="purchase", value=Decimal("15.00"), quantity=2,
                 timestamp=at + timedelta(minutes=5))  # fmt: skip
    # a list outside the experiment, clicked: not counted
    other = served_list([lamp], surface="pdp", user_id="x", created_at=now - timedelta(hours=3))
    EventFactory(
        session_id="s1",
        item=lamp,
        user_id="x",
        event_type="click",
        recommendation_id=other.recommendation_id,
        timestamp=at,
    )
    return lists


def test_clicks_conversions_and_revenue_are_credited_to_the_arm(experiment, traffic):
    events_attribute_recent()
    by_kind = {
        (a.kind, a.variant): a for a in Attribution.objects.filter(experiment=experiment.pk).order_by("kind")
    }
    assert set(by_kind) == {("click", "control"), ("click", "B"), ("conversion", "B")}
    assert by_kind[("conversion", "B")].revenue == Decimal("30.0000")
    assert Attribution.objects.get(surface="pdp").experiment is None

    arms = {a.name: a for a in arms_collect(experiment)}
    assert (arms["control"].lists, arms["control"].clicked_lists, arms["control"].converted_lists) == (
        4,
        1,
        0,
    )
    assert (arms["B"].lists, arms["B"].clicked_lists, arms["B"].converted_lists) == (4, 2, 1)
    assert (arms["B"].revenue, arms["B"].revenue_sq) == (30.0, 900.0)
    assert arms["control"].revenue == 0.0


def test_report_compares_each_arm_with_the_control_and_says_when_data_is_short(experiment, traffic):
    report = experiment_report(experiment=experiment, metric="ctr", mde=0.05)  # attributes the events itself
    ctr = report.comparisons["B"]["ctr"]
    assert (ctr.control, ctr.arm) == (0.25, 0.5)
    assert report.verdicts == {"B": "not enough data"}  # 4 lists per arm; +5% needs tens of thousands
    guard = {row[0]: row for row in report.tables[2].rows}
    assert guard["B"][2] == 2  # distinct items served
    assert guard["B"][3] == pytest.approx(1.0)  # both active items: coverage 1
    # these lists recorded no serve time (logged before it was): no latency, said so, not 0
    assert guard["B"][6:] == ("no data", "no data", 0)


@pytest.fixture
def timed(experiment):
    """Serve times per arm, in ms (None: a list logged before serve times were): control 10..50 and one
    without; B 5, 7, 105, 9; C (an arm with no timed list) two without."""
    item = ItemFactory(category_path=[], embedding=None, published_at=None, external_id="lamp")
    ExperimentArm.objects.filter(experiment=experiment, name="B").update(traffic_percent=30)
    ExperimentArm.objects.create(experiment=experiment, name="C", traffic_percent=20)
    latencies = {"control": [30, None, 10, 50, 20, 40], "B": [5, 7, 105, 9], "C": [None, None]}
    for variant, values in latencies.items():
        for ms in values:
            served_list([item], surface="home", experiment=experiment.pk, variant=variant, latency_ms=ms)
    # a timed list outside the experiment: not counted
    served_list([item], surface="home", latency_ms=9999.0)


def test_guardrails_give_each_arms_p50_and_p95_latency_over_its_timed_lists(experiment, timed):
    report = experiment_report(experiment=experiment, metric="ctr", mde=0.05)
    guard = {row[0]: row[6:] for row in report.tables[2].rows}
    # percentile_cont, by hand: sorted x_0..x_(n-1), rank h = (n - 1) * p, x_floor(h) + frac(h) * (next - it)
    # control 10 20 30 40 50 (the NULL left out): p50 h = 2 -> 30; p95 h = 3.8 -> 40 + 0.8 * 10 = 48
    assert guard["control"] == (30.0, 48.0, 5)
    # B 5 7 9 105: p50 h = 1.5 -> 7 + 0.5 * 2 = 8; p95 h = 2.85 -> 9 + 0.85 * 96 = 90.6
    assert guard["B"] == (8.0, 90.6, 4)
    assert guard["C"] == ("no data", "no data", 0)
    assert report.tables[2].header[6:] == ["p50 latency ms", "p95 latency ms", "lists timed"]


def test_guardrails_csv_has_the_latency_columns(staff_client, experiment, timed):
    response = staff_client.get(
        f"/reports/experiments?experiment={experiment.pk}&format=csv&table=experiment_guardrails"
    )
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0][6:] == ["p50 latency ms", "p95 latency ms", "lists timed"]
    assert {r[0]: r[6:] for r in rows[1:]} == {
        "control": ["30.0", "48.0", "5"],
        "B": ["8.0", "90.6", "4"],
        "C": ["no data", "no data", "0"],
    }


@pytest.fixture
def staff_client(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("analyst", password="pw-a-1", is_staff=True))
    return client


def test_page_shows_each_arm_and_the_verdict(staff_client, experiment, traffic):
    response = staff_client.get(f"/reports/experiments?experiment={experiment.pk}&metric=conversion&mde=10")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="verdict-B"' in html and "not enough data" in html
    assert "experiment-rates-chart" in html and "p95 latency ms" in html


def test_page_exports_the_arms_as_csv(staff_client, experiment, traffic):
    response = staff_client.get("/reports/experiments?experiment=home-mmr&format=csv&table=experiment_arms")
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0][:4] == ["arm", "control", "traffic %", "lists served"]
    assert {r[0]: (r[3], r[4]) for r in rows[1:]} == {"control": ("4", "1"), "B": ("4", "2")}
    tests = staff_client.get(
        f"/reports/experiments?experiment={experiment.pk}&format=csv&table=experiment_tests"
    )
    assert tests.status_code == 200
    assert len(list(csv.reader(io.StringIO(tests.content.decode())))) == 4  # header + B on three metrics


@pytest.mark.parametrize(
    ("query", "field"),
    [("mde=abc", "mde"), ("mde=0", "mde"), ("metric=clicks", "metric"), ("experiment=nope", "experiment")],
)
def test_a_bad_question_is_a_400_naming_the_field(staff_client, experiment, query, field):
    response = staff_client.get(f"/reports/experiments?{query}")
    assert response.status_code == 400
    assert response.content.decode().startswith(f"{field}:")


def test_an_arm_that_served_no_list_shows_no_rate_and_no_test(staff_client, experiment):
    # just started: no list served yet; the report says nothing was measured rather than CTR 0.0 in [0, 0]
    report = experiment_report(experiment=experiment, metric="ctr", mde=0.05)
    arms = {row[0]: row for row in report.tables[0].rows}
    assert arms["B"][3:8] == (0, 0, None, None, None)  # lists, clicked lists, CTR and its interval
    tests = report.tables[1].rows
    assert [(r[1], r[4], r[8], r[9], r[12]) for r in tests] == [
        (metric, None, None, None, "not enough data")
        for metric in ("CTR", "Conversion rate", "Revenue per list")
    ]  # difference, z / t and p-value
    html = staff_client.get(f"/reports/experiments?experiment={experiment.pk}").content.decode()
    assert '"CTR": [null, null]' in html  # no bar rather than a bar at 0


def test_page_without_experiments_says_how_to_start(staff_client):
    response = staff_client.get("/reports/experiments")
    assert response.status_code == 200
    assert "No experiment yet" in response.content.decode()

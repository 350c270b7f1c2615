"""The experiment admin: arms inline, refused with the reason when the split, the control or the arm count
is wrong, or when another experiment already runs on the surface; every change audited."""

from __future__ import annotations

import pytest

from recommendations.models import AuditEntry, Experiment, ExperimentState, RerankProfile
from tests.factories import ItemFactory, served_list

pytestmark = pytest.mark.django_db
URL = "/admin/recommendations/experiment/add/"


@pytest.fixture
def staff(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("merch", "merch@example.com", "pw-123456"))
    return client


def _form(arms, **overrides):
    data = {
        "name": "home-mmr",
        "description": "",
        "state": "running",
        "surfaces": "home",
        "starts_at_0": "2026-11-01",
        "starts_at_1": "00:00:00",
        "ends_at_0": "",
        "ends_at_1": "",
        "arms-TOTAL_FORMS": str(len(arms)),
        "arms-INITIAL_FORMS": "0",
        "arms-MIN_NUM_FORMS": "2",
        "arms-MAX_NUM_FORMS": "1000",
    }
    for i, arm in enumerate(arms):
        data[f"arms-{i}-name"] = arm["name"]
        data[f"arms-{i}-traffic_percent"] = str(arm["percent"])
        if arm.get("control"):
            data[f"arms-{i}-is_control"] = "on"
        data[f"arms-{i}-profile"] = str(arm.get("profile", ""))
        data[f"arms-{i}-model_version"] = ""
        data[f"arms-{i}-disabled_sources"] = arm.get("disabled", "")
    data.update(overrides)
    return data


def test_an_experiment_with_two_arms_is_saved_and_audited(staff):
    profile = RerankProfile.objects.create(surface="exp-b", mmr_lambda=0.7)
    response = staff.post(
        URL,
        _form([{"name": "control", "percent": 50, "control": True},
               {"name": "B", "percent": 50, "profile": profile.pk, "disabled": "trending"}]),
    )  # fmt: skip
    assert response.status_code == 302, response.content.decode()[:3000]
    experiment = Experiment.objects.get()
    assert (experiment.state, experiment.surfaces) == (ExperimentState.RUNNING, ["home"])
    arms = {a.name: a for a in experiment.arms.all()}
    assert arms["B"].profile == profile and arms["B"].disabled_sources == ["trending"]
    assert arms["control"].is_control
    assert AuditEntry.objects.filter(model="recommendations.Experiment", action="create").exists()
    arms_audit = AuditEntry.objects.get(model="recommendations.Experiment", action="change").changes["arms"]
    assert arms_audit[0] == [] and [a["name"] for a in arms_audit[1]] == ["control", "B"]
    assert arms_audit[1][1]["profile"] == "exp-b"


@pytest.mark.parametrize(
    ("arms", "reason"),
    [
        ([{"name": "control", "percent": 100, "control": True}], "at least two arms"),
        ([{"name": "control", "percent": 50, "control": True}, {"name": "B", "percent": 40}], "sum to 90%"),
        ([{"name": "A", "percent": 50}, {"name": "B", "percent": 50}], "Exactly one arm is the control"),
        (
            [
                {"name": "control", "percent": 50, "control": True},
                {"name": "B", "percent": 50, "disabled": "nope"},
            ],
            "Unknown candidate source nope",
        ),
    ],
)
def test_an_invalid_experiment_is_refused_with_the_reason(staff, arms, reason):
    response = staff.post(URL, _form(arms))
    assert response.status_code == 200
    assert reason in response.content.decode()
    assert not Experiment.objects.exists()


def test_a_second_running_experiment_on_the_same_surface_is_refused(staff):
    two = [{"name": "control", "percent": 50, "control": True}, {"name": "B", "percent": 50}]
    assert staff.post(URL, _form(two)).status_code == 302
    response = staff.post(URL, _form(two, name="home-other", surfaces="pdp,home"))
    assert response.status_code == 200
    assert "already runs on home" in response.content.decode()
    # as a draft it may be prepared
    assert (
        staff.post(URL, _form(two, name="home-other", surfaces="pdp,home", state="draft")).status_code == 302
    )


def test_stopping_from_the_list_is_audited(staff):
    two = [{"name": "control", "percent": 50, "control": True}, {"name": "B", "percent": 50}]
    staff.post(URL, _form(two))
    experiment = Experiment.objects.get()
    response = staff.post(
        "/admin/recommendations/experiment/",
        {"action": "stop_experiments", "_selected_action": [experiment.pk]},
    )
    assert response.status_code == 302
    experiment.refresh_from_db()
    assert experiment.state == ExperimentState.STOPPED
    stopped = AuditEntry.objects.filter(model="recommendations.Experiment", action="change").order_by("-id")[
        0
    ]
    assert stopped.changes == {"state": ["running", "stopped"]}
    assert "report" in staff.get("/admin/recommendations/experiment/").content.decode()


def test_an_arm_that_has_served_lists_cannot_be_renamed(staff):
    two = [{"name": "control", "percent": 50, "control": True}, {"name": "B", "percent": 50}]
    staff.post(URL, _form(two))
    experiment = Experiment.objects.get()
    arms = {a.name: a for a in experiment.arms.all()}
    change = f"/admin/recommendations/experiment/{experiment.pk}/change/"

    def renamed(name: str) -> dict:
        data = _form([{"name": "control", "percent": 50, "control": True}, {"name": name, "percent": 50}])
        data.update({"arms-INITIAL_FORMS": "2", "arms-0-id": arms["control"].pk, "arms-1-id": arms["B"].pk})
        data.update({"arms-0-experiment": experiment.pk, "arms-1-experiment": experiment.pk})
        return data

    # nothing served yet: a typo may still be fixed
    assert staff.post(change, renamed("C")).status_code == 302
    assert sorted(experiment.arms.values_list("name", flat=True)) == ["C", "control"]
    served_list([ItemFactory(external_id="lamp")], experiment=experiment.pk, variant="C")
    response = staff.post(change, renamed("D"))
    assert response.status_code == 200
    assert "Arm &#x27;C&#x27; has served lists" in response.content.decode()
    assert sorted(experiment.arms.values_list("name", flat=True)) == ["C", "control"]

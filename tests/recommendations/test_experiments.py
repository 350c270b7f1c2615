"""A/B experiments on the serving path: hash assignment (stable, balanced), the arm's configuration served
and logged, the answer labelled, a stopped experiment serving its control."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from recommendations import experiments
from recommendations.models import Experiment, ExperimentArm, ExperimentState, RerankProfile, ServedList
from tests.factories import ItemFactory, UserProfileFactory, topic

IDS = 100_000


@pytest.mark.parametrize("split", [[50, 50], [10, 90], [20, 30, 50]])
def test_assignment_is_within_one_percent_of_the_split_over_100000_ids(split):
    counts = [0] * len(split)
    for n in range(IDS):
        counts[experiments.arm_index(experiment_id=7, unit=f"user-{n}", percents=split)] += 1
    shares = [c / IDS * 100 for c in counts]
    for share, wanted in zip(shares, split, strict=True):
        assert abs(share - wanted) < 1.0, (shares, split)


def test_assignment_differs_between_experiments():
    """A visitor's arm in one experiment says nothing about their arm in the next one."""
    first = [experiments.arm_index(experiment_id=1, unit=f"u{n}", percents=[50, 50]) for n in range(2000)]
    second = [experiments.arm_index(experiment_id=2, unit=f"u{n}", percents=[50, 50]) for n in range(2000)]
    agree = sum(a == b for a, b in zip(first, second, strict=True)) / 2000
    assert 0.45 < agree < 0.55


def test_assignment_is_stable_across_processes():
    """Not Python's hash(), which is salted per process: another interpreter (another PYTHONHASHSEED)
    assigns every id the same arm."""
    units = [f"visitor-{n}" for n in range(500)]
    here = [experiments.arm_index(experiment_id=3, unit=u, percents=[30, 70]) for u in units]
    code = (
        "from recommendations.experiments import arm_index;"
        "print(','.join(str(arm_index(experiment_id=3, unit=f'visitor-{n}', percents=[30, 70])) "
        "for n in range(500)))"
    )
    env_seed = {"PYTHONHASHSEED": "12345", "DJANGO_SETTINGS_MODULE": "recsys_project.settings"}
    out = (
        subprocess.run(
            [sys.executable, "-c", "import django; django.setup();" + code],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, **env_seed},
            timeout=120,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    assert [int(x) for x in out.split(",")] == here
    assert here == [experiments.arm_index(experiment_id=3, unit=u, percents=[30, 70]) for u in units]


# --- served through the API


@pytest.fixture
def catalog(db):
    for i in range(12):
        ItemFactory(external_id=f"it-{i}", embedding=topic(i % 6, jitter=0.2, seed=i))
    RerankProfile.objects.create(surface="home")
    control = RerankProfile.objects.create(surface="exp-control")
    variant = RerankProfile.objects.create(surface="exp-b", diversity_mode="none")
    return control, variant


def _experiment(profiles, *, state=ExperimentState.RUNNING, surfaces=("home",), split=(50, 50)) -> Experiment:
    control, variant = profiles
    experiment = Experiment.objects.create(
        name="home-diversity",
        state=state,
        surfaces=list(surfaces),
        starts_at=timezone.now() - timedelta(hours=1),
    )
    ExperimentArm.objects.create(
        experiment=experiment, name="control", is_control=True, traffic_percent=split[0], profile=control
    )
    ExperimentArm.objects.create(experiment=experiment, name="B", traffic_percent=split[1], profile=variant)
    return experiment


def _user_in(experiment: Experiment, arm: str) -> str:
    """A user id the hash puts in this arm."""
    arms = sorted(experiment.arms.all(), key=lambda a: a.pk)
    for n in range(1000):
        user = f"shopper-{n}"
        index = experiments.arm_index(
            experiment_id=experiment.pk, unit=user, percents=[a.traffic_percent for a in arms]
        )
        if arms[index].name == arm:
            return user
    raise AssertionError("no user in arm")


@pytest.mark.django_db
def test_answer_in_an_experiment_carries_experiment_and_variant_and_the_log_records_the_arm(api, catalog):
    experiment = _experiment(catalog)
    for arm, profile in (("control", "exp-control"), ("B", "exp-b")):
        user = _user_in(experiment, arm)
        UserProfileFactory(external_id=user, embedding=topic(2))
        body = api.get(f"/api/v1/recommendations/users/{user}", {"surface": "home", "limit": 4}).json()
        assert (body["experiment"], body["variant"]) == ("home-diversity", arm)
        logged = ServedList.objects.get(recommendation_id=body["recommendation_id"])
        assert (logged.experiment, logged.variant) == (experiment.pk, arm)
        assert logged.profile_surface == profile  # served with the arm's re-ranking profile
        # the same visitor, asked again: the same arm
        again = api.get(f"/api/v1/recommendations/users/{user}", {"surface": "home", "limit": 4}).json()
        assert again["variant"] == arm


@pytest.mark.django_db
def test_answer_in_an_experiment_is_logged_with_its_arm_and_serve_time(api, catalog):
    experiment = _experiment(catalog)
    user = _user_in(experiment, "B")
    started = time.perf_counter()
    body = api.get(f"/api/v1/recommendations/users/{user}", {"surface": "home", "limit": 4}).json()
    waited_ms = (time.perf_counter() - started) * 1000
    logged = ServedList.objects.get(recommendation_id=body["recommendation_id"])
    assert (logged.experiment, logged.variant) == (experiment.pk, "B")
    # the time the view took, in milliseconds: positive, and within what the client waited
    assert 0 < logged.latency_ms < waited_ms


@pytest.mark.django_db
def test_anonymous_visitor_is_assigned_by_session_id(api, catalog):
    experiment = _experiment(catalog)
    session = next(
        f"sess-{n}"
        for n in range(1000)
        if experiments.arm_index(experiment_id=experiment.pk, unit=f"sess-{n}", percents=[50, 50]) == 1
    )
    body = api.post(
        "/api/v1/recommendations/session",
        {"item_ids": ["it-1"], "session_id": session, "surface": "home"},
        format="json",
    ).json()
    assert (body["experiment"], body["variant"]) == ("home-diversity", "B")


@pytest.mark.django_db
def test_answer_outside_the_experiment_has_no_experiment_or_variant(api, catalog):
    _experiment(catalog, surfaces=("home",))
    UserProfileFactory(external_id="u1", embedding=topic(2))
    body = api.get("/api/v1/recommendations/users/u1", {"surface": "pdp"}).json()
    assert set(body) == {"recommendation_id", "scenario", "items"}
    logged = ServedList.objects.get(recommendation_id=body["recommendation_id"])
    assert (logged.experiment, logged.variant, logged.profile_surface) == (None, "", "default")


@pytest.mark.django_db
def test_a_draft_experiment_serves_nobody(api, catalog):
    experiment = _experiment(catalog, state=ExperimentState.DRAFT)
    user = _user_in(experiment, "B")
    UserProfileFactory(external_id=user, embedding=topic(2))
    body = api.get(f"/api/v1/recommendations/users/{user}", {"surface": "home"}).json()
    assert "variant" not in body
    assert ServedList.objects.get().profile_surface == "home"


@pytest.mark.django_db
def test_a_stopped_experiment_serves_the_control_arm_to_everyone_unlabelled(api, catalog):
    experiment = _experiment(catalog)
    in_b = _user_in(experiment, "B")
    UserProfileFactory(external_id=in_b, embedding=topic(2))
    assert api.get(f"/api/v1/recommendations/users/{in_b}", {"surface": "home"}).json()["variant"] == "B"

    experiment.state = ExperimentState.STOPPED
    experiment.save()  # the signal clears this process's cache
    body = api.get(f"/api/v1/recommendations/users/{in_b}", {"surface": "home"}).json()
    assert "experiment" not in body and "variant" not in body
    logged = ServedList.objects.get(recommendation_id=body["recommendation_id"])
    assert logged.profile_surface == "exp-control"  # the control arm's profile, for a user who was in B
    assert logged.experiment is None


@pytest.mark.django_db
def test_an_experiment_past_its_end_serves_the_control_arm(api, catalog):
    experiment = _experiment(catalog)
    in_b = _user_in(experiment, "B")
    experiment.ends_at = timezone.now() - timedelta(minutes=1)
    experiment.save()
    UserProfileFactory(external_id=in_b, embedding=topic(2))
    body = api.get(f"/api/v1/recommendations/users/{in_b}", {"surface": "home"}).json()
    assert "variant" not in body
    assert ServedList.objects.get().profile_surface == "exp-control"


@pytest.mark.django_db
def test_an_edit_to_an_arm_applies_to_the_next_answer(api, catalog):
    experiment = _experiment(catalog)
    user = _user_in(experiment, "B")
    UserProfileFactory(external_id=user, embedding=topic(2))
    api.get(f"/api/v1/recommendations/users/{user}", {"surface": "home"})
    arm = experiment.arms.get(name="B")
    arm.profile = RerankProfile.objects.get(surface="home")
    arm.save()
    body = api.get(f"/api/v1/recommendations/users/{user}", {"surface": "home"}).json()
    assert ServedList.objects.get(recommendation_id=body["recommendation_id"]).profile_surface == "home"


def test_a_disabled_source_offers_nothing_to_the_ranker():
    """Candidates only the disabled source offered are gone; the others keep their other sources' columns
    and lose the disabled one's."""
    import numpy as np

    from recommendations.scenarios import _without_sources
    from recommendations.sources import Gathered

    nan = np.nan
    gathered = Gathered(
        pks=np.array([10, 11, 12], dtype=np.int64),
        names=("content_recent", "trending"),
        scores=np.array([[0.9, nan], [0.5, 3.0], [nan, 2.0]], dtype=np.float32),
        ranks=np.array([[1, nan], [2, 1], [nan, 2]], dtype=np.float32),
        by_source={"content_recent": {10: 0.9, 11: 0.5}, "trending": {11: 3.0, 12: 2.0}},
    )
    out = _without_sources(gathered, frozenset({"trending"}))
    assert out.pks.tolist() == [10, 11]
    assert np.isnan(out.scores[:, 1]).all() and np.isnan(out.ranks[:, 1]).all()
    assert out.scores[:, 0].tolist() == pytest.approx([0.9, 0.5])
    assert out.by_source == {"content_recent": {10: 0.9, 11: 0.5}, "trending": {}}
    assert _without_sources(gathered, frozenset({"repeat"})) is gathered  # not a source of this ranker

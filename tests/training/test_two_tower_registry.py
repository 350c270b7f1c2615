"""The registry: the gate promotes a version only when it beats the active one (or content-only), records
why, publishes its vectors with their own index before activation; rollback; one training at a time."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from analytics.models import EvaluationRun
from catalog.models import Item
from recommendations.models import ModelItemVector, ModelVersion
from tests.recommendations.two_tower_factories import TINY, planted_shop
from training.two_tower import registry

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def tiny_model(settings, tmp_path):
    settings.RECSYS_TWO_TOWER = TINY
    settings.RECSYS_TWO_TOWER_DIR = tmp_path / "models"
    settings.RECSYS_TWO_TOWER_MIN_GAIN = 0.0
    settings.RECSYS_TWO_TOWER_GATE_PROTOCOL = "leave-one-out"
    settings.RECSYS_TWO_TOWER_GATE_METRIC = "ndcg@10"


@pytest.fixture
def shop():
    return planted_shop(seed=0)


def _index_exists(version_id: int) -> bool:
    with connection.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_indexes WHERE indexname = %s", [f"two_tower_hnsw_v{version_id}"])
        return cur.fetchone() is not None


def test_first_version_that_beats_content_only_is_promoted_with_its_vectors_and_index(shop):
    version = registry.model_train_and_gate(seed=0)
    assert version.status == ModelVersion.Status.PROMOTED and version.is_active
    assert version.reference.startswith("content-only baseline")
    assert version.candidate_score > version.reference_score
    assert "ndcg@10" in version.reason and "leave-one-out" in version.reason
    assert version.item_vectors == Item.objects.filter(is_active=True).count()
    assert ModelItemVector.objects.filter(version=version).count() == version.item_vectors
    assert _index_exists(version.pk)
    assert Path(version.artifact_path, "model.pt").exists()
    run = EvaluationRun.objects.get(pk=version.evaluation_run_id)
    assert set(run.metrics) == {"content", "user_vector", "two_tower"}
    assert version.window_start < version.window_end and version.events > 0


def test_version_no_better_than_the_active_one_is_rejected_and_the_active_one_stays(shop):
    first = registry.model_train_and_gate(seed=0)
    # the same data and seed train the same model: equal, so not better
    second = registry.model_train_and_gate(seed=0)
    assert second.status == ModelVersion.Status.REJECTED and not second.is_active
    assert second.reference == f"active version v{first.pk}"
    assert second.candidate_score == pytest.approx(second.reference_score)
    assert "does not beat" in second.reason
    assert ModelItemVector.objects.filter(version=second).count() == 0
    first.refresh_from_db()
    assert first.is_active
    run = EvaluationRun.objects.get(pk=second.evaluation_run_id)
    assert "two_tower_active" in run.metrics  # the incumbent was scored in the same run


def test_required_gain_rejects_a_first_version_and_nothing_becomes_active(shop, settings):
    settings.RECSYS_TWO_TOWER_MIN_GAIN = 1.0
    version = registry.model_train_and_gate(seed=0)
    assert version.status == ModelVersion.Status.REJECTED
    assert "by 1.0" in version.reason
    assert not ModelVersion.objects.filter(is_active=True).exists()


def test_rollback_reactivates_the_previous_version_then_content_only(shop, settings):
    first = registry.model_train_and_gate(seed=0)
    settings.RECSYS_TWO_TOWER_MIN_GAIN = -1.0  # promote the second whatever it scores
    second = registry.model_train_and_gate(seed=1)
    assert second.is_active

    call_command("rollback_model")
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.is_active and not second.is_active
    assert second.status == ModelVersion.Status.ROLLED_BACK and f"to v{first.pk}" in second.reason

    call_command("rollback_model")  # nothing older: no version active, content vectors serve
    assert not ModelVersion.objects.filter(is_active=True).exists()
    with pytest.raises(CommandError, match="nothing to roll back"):
        call_command("rollback_model")
    call_command("rollback_model", "--to", str(second.pk))
    assert ModelVersion.objects.get(is_active=True) == second


def test_rollback_to_a_rejected_version_is_refused(shop, settings):
    registry.model_train_and_gate(seed=0)
    rejected = registry.model_train_and_gate(seed=0)
    with pytest.raises(CommandError, match="no published vectors"):
        call_command("rollback_model", "--to", str(rejected.pk))


@contextmanager
def lock_held_by_another_run():
    """The training advisory lock, held by another database session for the duration."""
    params = connection.get_connection_params()
    other = psycopg.connect(
        **{k: v for k, v in params.items() if k in {"dbname", "user", "host", "port", "password"}}
    )
    try:
        other.execute("SELECT pg_advisory_lock(%s)", [registry.LOCK_KEY])
        yield
    finally:
        other.close()


def test_training_is_refused_while_another_run_holds_the_lock(shop):
    with lock_held_by_another_run():
        with pytest.raises(registry.TrainingBusy):
            registry.model_train_and_gate(seed=0)
        with pytest.raises(CommandError, match="holds the lock"):
            call_command("train_model", "--no-progress")
    assert not ModelVersion.objects.exists()


def test_a_run_killed_mid_training_is_marked_failed_by_the_next_run(shop):
    # what a SIGKILLed run leaves behind: a version still "training", and its lock gone with its session
    killed = ModelVersion.objects.create(configuration={}, seed=0, events=0)
    assert killed.status == ModelVersion.Status.TRAINING
    version = registry.model_train_and_gate(seed=0)
    killed.refresh_from_db()
    assert killed.status == ModelVersion.Status.FAILED and not killed.is_active
    assert killed.reason.startswith("interrupted")
    assert version.status == ModelVersion.Status.PROMOTED


def test_a_live_run_s_version_is_not_marked_failed_by_a_refused_one(shop):
    live = ModelVersion.objects.create(configuration={}, seed=0, events=0)
    with lock_held_by_another_run(), pytest.raises(registry.TrainingBusy):
        registry.model_train_and_gate(seed=0)
    live.refresh_from_db()
    assert live.status == ModelVersion.Status.TRAINING


def test_train_model_command_reports_the_decision(shop, capsys):
    call_command("train_model", "--seed", "0", "--window-days", "365", "--no-progress")
    out = capsys.readouterr().out
    version = ModelVersion.objects.get(kind=ModelVersion.Kind.TWO_TOWER)
    assert f"v{version.pk}: promoted (active)" in out
    assert version.configuration["window_days"] == 365.0


def test_train_model_command_refuses_a_bad_window():
    with pytest.raises(CommandError, match="--window-days must be positive"):
        call_command("train_model", "--window-days", "0")


def test_admin_lists_versions_with_their_decision_and_metrics(shop, admin_client):
    promoted = registry.model_train_and_gate(seed=0)
    rejected = registry.model_train_and_gate(seed=0)
    page = admin_client.get("/admin/recommendations/modelversion/").content.decode()
    assert promoted.name in page and rejected.name in page
    assert "rejected" in page and "content-only baseline" in page
    detail = admin_client.get(f"/admin/recommendations/modelversion/{rejected.pk}/change/").content.decode()
    assert "does not beat" in detail
    assert "two_tower_active" in detail and "ndcg@10" in detail  # the gate run's table, every method
    # the "activate" action is the same as rollback_model --to
    admin_client.post(
        "/admin/recommendations/modelversion/",
        {"action": "activate", "_selected_action": [str(promoted.pk)]},
    )
    assert ModelVersion.objects.get(is_active=True) == promoted

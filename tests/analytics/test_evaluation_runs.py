"""Evaluation runs: an offline evaluation's result (training.evaluation) saved as an EvaluationRun, by
analytics' callers directly and by a training gate through training's `evaluation_finished` signal."""

from __future__ import annotations

import pytest

from analytics.models import EvaluationRun
from analytics.services import evaluation_run_save
from tests.factories import T0
from tests.training.test_evaluation import _buy, shop  # noqa: F401 (a fixture)
from training import evaluation

pytestmark = pytest.mark.django_db


def test_run_is_saved_with_protocol_fingerprint_configuration_and_metrics(
    shop,  # noqa: F811
):
    run = evaluation_run_save(
        result=evaluation.evaluation_run(protocol="temporal", test_days=2, progress=False)
    )
    saved = EvaluationRun.objects.get(pk=run.pk)
    assert saved.protocol == "temporal"
    assert len(saved.dataset_fingerprint) == 64
    assert saved.configuration["test_days"] == 2
    assert saved.summary["users_evaluated"] == 2  # u1 (test c) and u2 (test b, c)
    assert set(saved.metrics) == set(evaluation.BASELINES)
    assert {
        "recall@10",
        "ndcg@20",
        "hit_rate@50",
        "mrr",
        "coverage@10",
        "diversity@10",
        "mean_popularity@10",
    } <= set(saved.metrics["popularity"])
    # same data, same fingerprint; new event, new fingerprint
    assert evaluation.dataset_fingerprint() == saved.dataset_fingerprint
    _buy("z", shop["a"], T0)
    assert evaluation.dataset_fingerprint() != saved.dataset_fingerprint


def test_a_result_recorded_by_training_is_stored_and_its_id_returned(
    shop,  # noqa: F811
):
    result = evaluation.evaluation_run(protocol="leave-one-out", label="a gate", progress=False)
    run_id = evaluation.evaluation_record(result)
    saved = EvaluationRun.objects.get(pk=run_id)
    assert (saved.protocol, saved.label) == ("leave-one-out", "a gate")
    assert saved.metrics == result.metrics and saved.summary == result.summary

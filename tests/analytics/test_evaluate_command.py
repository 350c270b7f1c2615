"""`manage.py evaluate`: both protocols, a table per run, saved runs compared, bad arguments, and the arms
of an A/B experiment (the evaluation itself: tests/training/test_evaluation.py)."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from analytics.models import EvaluationRun
from tests.training.test_evaluation import shop  # noqa: F401 (a fixture)

pytestmark = pytest.mark.django_db


def test_evaluate_command_runs_both_protocols_prints_tables_and_compares(
    shop,  # noqa: F811
):
    out = StringIO()
    call_command("evaluate", "--no-progress", stdout=out)
    text = out.getvalue()
    assert "protocol=leave-one-out" in text and "protocol=temporal" in text
    assert "cooccurrence" in text and "recall@10" in text
    ids = list(EvaluationRun.objects.order_by("pk").values_list("pk", flat=True))
    assert len(ids) == 2
    out = StringIO()
    call_command("evaluate", "--compare", *map(str, ids), stdout=out)
    assert f"#{ids[0]} leave-one-out" in out.getvalue()
    assert "cooccurrence recall@10" in out.getvalue()


def test_evaluate_command_rejects_bad_arguments_and_empty_data(db):
    with pytest.raises(CommandError, match="No events"):
        call_command("evaluate", "--no-progress", stdout=StringIO())
    with pytest.raises(CommandError, match="No evaluation run with id 999"):
        call_command("evaluate", "--compare", "999", stdout=StringIO())
    with pytest.raises(CommandError, match="--k"):
        call_command("evaluate", "--k", "0", stdout=StringIO())


def test_evaluate_arms_scores_each_arm_with_its_own_configuration(
    shop,  # noqa: F811
):
    """The control's profile serves in-stock items only and c (every evaluated user's test item) is out of
    stock; arm B's profile serves it anyway: B finds c, the control cannot."""
    from recommendations.experiments import experiments_cache_clear
    from recommendations.models import Experiment, ExperimentArm, RerankProfile

    shop["c"].in_stock = False
    shop["c"].save()
    strict = RerankProfile.objects.create(surface="exp-strict", in_stock_only=True)
    lenient = RerankProfile.objects.create(surface="exp-lenient", in_stock_only=False)
    experiment = Experiment.objects.create(name="stock-rule")
    ExperimentArm.objects.create(experiment=experiment, name="control", is_control=True, traffic_percent=50,
                                 profile=strict)  # fmt: skip
    ExperimentArm.objects.create(experiment=experiment, name="B", traffic_percent=50, profile=lenient)
    experiments_cache_clear()
    out = StringIO()
    call_command(
        "evaluate", "--no-progress", "--protocol", "leave-one-out", "--arms", "stock-rule", stdout=out
    )
    run = EvaluationRun.objects.get()
    assert set(run.metrics) == {"popularity", "arm_control", "arm_B"}
    assert run.metrics["arm_control"]["hit_rate@10"] == 0.0
    assert run.metrics["arm_B"]["hit_rate@10"] == 1.0
    assert run.summary["arms"]["arm_B"]["profile"] == "exp-lenient"
    assert run.label == "arms:stock-rule"
    assert "arm_B" in out.getvalue()
    with pytest.raises(CommandError, match="--arms: no experiment"):
        call_command("evaluate", "--no-progress", "--arms", "nope", stdout=StringIO())

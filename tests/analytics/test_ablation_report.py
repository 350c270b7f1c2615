"""The re-ranking ablation on the evaluation report (analytics.ablation_report): the newest run that has
one, to staff only, with its CSV."""

from __future__ import annotations

import pytest

from analytics.models import EvaluationRun
from training import ablation

pytestmark = pytest.mark.django_db


def test_report_page_shows_the_newest_ablation_to_staff_only_with_csv(client, django_user_model):
    from tests.analytics.test_evaluation_report_browser import stored_ablation_run

    run = stored_ablation_run()
    EvaluationRun.objects.create(protocol="temporal", dataset_fingerprint="f" * 64, metrics={})  # newer, none
    assert client.get("/reports/evaluations").status_code == 302  # to the login page
    client.force_login(django_user_model.objects.create_user("shopper"))
    assert client.get("/reports/evaluations").status_code == 302
    client.force_login(django_user_model.objects.create_user("analyst", is_staff=True))
    page = client.get("/reports/evaluations")
    assert page.status_code == 200 and page.context["ablated"] == run
    charts = page.context["chart_data"]
    raw = run.metrics[ablation.NONE]["ndcg@10"]
    assert charts["ablation-diversity-chart"]["reference"]["y"] == pytest.approx(0.97 * raw)
    assert [p["label"] for p in charts["ablation-coverage-chart"]["points"]][-2:] == [
        "no rules (ranker raw)",
        "default with mmr_lambda=0.7",
    ]
    rows = page.client.get("/reports/evaluations?format=csv&table=ablation").content.decode().splitlines()
    assert rows[0] == "variant,ndcg@10,recall@10,coverage@10,diversity@10,% of raw ndcg@10"
    assert rows[-2].startswith("no rules (ranker raw),") and rows[-2].endswith(",100.0")

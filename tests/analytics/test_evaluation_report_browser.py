"""The evaluation report page in a real headless Chromium: the re-ranking ablation's trade-off charts
render from a stored run, within the Content-Security-Policy. Screenshot: test-output/."""

from __future__ import annotations

from analytics.models import EvaluationRun
from tests.browser import OUTPUT, needs_chromium
from tests.project.test_content_security_policy_browser import Visit
from training import ablation

pytestmark = needs_chromium


def stored_ablation_run() -> EvaluationRun:
    """A run as `evaluate --ablation` stores it: each variant a method, the table in the summary."""
    variants = ablation.variants_build([{"mmr_lambda": 0.7}])
    metrics = {}
    for i, variant in enumerate(variants):
        metrics[variant.method] = {
            "ndcg@10": 0.05 + 0.002 * i,
            "recall@10": 0.08 + 0.003 * i,
            "coverage@10": 0.10 + 0.01 * (i % 4),
            "diversity@10": 0.60 + 0.02 * (i % 5),
        }
    metrics["served"] = metrics[ablation.ALL]
    table = ablation.ablation_table(metrics, variants, k=10)
    return EvaluationRun.objects.create(
        protocol="temporal",
        dataset_fingerprint="f" * 64,
        metrics=metrics,
        summary={"users_evaluated": 300, "ablation": table},
        label="ablation",
    )


def test_evaluation_page_draws_the_ablation_trade_off_within_the_csp(
    live_server,
    transactional_db,
    browser,  # noqa: F811
    django_user_model,
):
    OUTPUT.mkdir(exist_ok=True)
    run = stored_ablation_run()
    django_user_model.objects.create_user("analyst", password="pw-analyst-1", is_staff=True)
    visit = Visit(browser)
    page = visit.page
    page.goto(live_server.url + "/admin/login/?next=/reports/evaluations")
    page.fill("#id_username", "analyst")
    page.fill("#id_password", "pw-analyst-1")
    page.click("input[type=submit]")
    page.wait_for_url(live_server.url + "/reports/evaluations", timeout=15000)
    for chart in ("ablation-diversity-chart", "ablation-coverage-chart", "evaluation-chart"):
        page.wait_for_selector(f"canvas#{chart}[data-rendered=true]", timeout=15000)
    # Chart.js drew one point per variant on each trade-off chart
    points = page.evaluate("() => Chart.getChart('ablation-diversity-chart').data.datasets.map(d => d.label)")
    assert points == [row["label"] for row in run.summary["ablation"]["rows"]] + ["97% of raw NDCG@10"]
    assert page.evaluate("() => Chart.getChart('ablation-coverage-chart').getDatasetMeta(0).data.length") == 1
    table = page.locator("#table-ablation")
    assert "without diversity" in table.inner_text() and "no rules (ranker raw)" in table.inner_text()
    assert f"run #{run.pk}" in page.locator("section.ablation h2").inner_text()
    visit.check("reports-evaluations-ablation")
    page.close()

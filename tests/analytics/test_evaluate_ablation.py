"""`evaluate --ablation`: the cost of each re-ranking rule, stored in the run and printed, on a small
generated shop (the variants and the table: tests/training/test_ablation.py)."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from analytics.models import EvaluationRun
from recommendations.models import RerankProfile
from recommendations.ranker.serving import active_ranker_clear
from recommendations.rerank.pipeline import STEPS
from tests.recommendations.two_tower_factories import planted_shop_with_early_purchases


@pytest.fixture
def shop(db, settings, tmp_path):
    """The planted shop with early purchases (two_tower_factories), the ranker's directory per test."""
    settings.RECSYS_RANKER_DIR = tmp_path / "ranker"
    active_ranker_clear()
    shop = planted_shop_with_early_purchases()
    yield shop
    active_ranker_clear()


def test_evaluate_ablation_stores_and_prints_the_cost_of_each_rule(shop):
    # a default profile whose popularity penalty buries the popular items, the planted next items among them
    RerankProfile.objects.create(surface="default", popularity_penalty=5.0)
    out = StringIO()
    call_command(
        "evaluate",
        "--no-progress",
        "--protocol",
        "leave-one-out",
        "--methods",
        "served",
        "ranker",
        "--ablation",
        "--ablation-set",
        "popularity_penalty=0",
        stdout=out,
    )
    run = EvaluationRun.objects.get()
    table = run.summary["ablation"]
    rows = {r["method"]: r for r in table["rows"]}
    assert table["k"] == 10 and len(rows) == len(STEPS) + 3
    # re-applying every rule gives the served answer itself; skipping every rule, the ranker's order
    assert run.metrics["rules_all"] == run.metrics["served"]
    assert run.metrics["rules_none"]["ndcg@10"] == pytest.approx(run.metrics["ranker"]["ndcg@10"])
    assert rows["rules_none"]["share_of_raw_ndcg"] == 1.0
    # the penalty is the costly rule: without it (or set to 0) the served path gets its accuracy back
    cost = rows["rules_all"]["share_of_raw_ndcg"]
    assert cost < 0.9
    assert rows["rules_without_popularity"]["share_of_raw_ndcg"] > cost
    assert rows["rules_set_1"]["ndcg@10"] == rows["rules_without_popularity"]["ndcg@10"]
    text = out.getvalue()
    assert "re-ranking ablation" in text and "without popularity" in text and "no rules (ranker raw)" in text


def test_evaluate_ablation_set_is_checked(db):
    with pytest.raises(CommandError, match="--ablation-set: 'colour': not a re-ranking setting"):
        call_command("evaluate", "--ablation", "--ablation-set", "colour=red", stdout=StringIO())
    with pytest.raises(CommandError, match="--ablation-set needs --ablation"):
        call_command("evaluate", "--ablation-set", "mmr_lambda=0.5", stdout=StringIO())

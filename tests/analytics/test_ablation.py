"""The re-ranking ablation: variants re-applied from the serving pass's trace, the stored table, and
`evaluate --ablation` on a small generated shop."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from analytics import ablation
from analytics.models import EvaluationRun
from interactions.models import Event
from recommendations.models import RerankProfile
from recommendations.ranker.serving import active_ranker_clear
from recommendations.rerank.pipeline import STEPS, RerankConfig, RerankContext
from tests.recommendations.rerank.conftest import NOW, axis, cand, cands
from tests.recommendations.two_tower_factories import planted_shop


def test_variants_are_all_rules_each_step_off_in_turn_then_no_rules():
    variants = ablation.variants_build([{"mmr_lambda": 0.7}])
    assert [v.label for v in variants] == [
        "all rules (default)",
        *(f"without {step}" for step in STEPS),
        "no rules (ranker raw)",
        "default with mmr_lambda=0.7",
    ]
    assert variants[0].skip == frozenset() and variants[-2].skip == frozenset(STEPS)


def test_settings_are_parsed_as_the_config_types_and_bad_ones_name_the_setting():
    assert ablation.settings_parse("mmr_lambda=0.8, popularity_penalty=0,promotions_enabled=false") == {
        "mmr_lambda": 0.8,
        "popularity_penalty": 0.0,
        "promotions_enabled": False,
    }
    for text, message in [
        ("mmr_lambda", "expected setting=value"),
        ("colour=red", "'colour': not a re-ranking setting"),
        ("mmr_lambda=high", "mmr_lambda: expected float"),
        ("mmr_lambda=1.5", "mmr_lambda: must be between 0 and 1"),
        ("popularity_penalty=-1", "popularity_penalty: must be at least 0"),
        ("diversity_mode=random", "diversity_mode: one of mmr, caps, none"),
        ("exclude_seen_in=user", "'exclude_seen_in': not a re-ranking setting"),
    ]:
        with pytest.raises(ValueError, match=message):
            ablation.settings_parse(text)


def test_each_variant_re_applies_rerank_to_the_traced_input():
    candidates = cands(
        cand(1, 0.9, vector=axis(0), interaction_count=50),
        cand(2, 0.89, vector=axis(0)),  # a near copy of 1
        cand(3, 0.5, vector=axis(1), available=False),
        cand(4, 0.4, vector=axis(2)),
    )
    config = RerankConfig(freshness_weight=0.0, popularity_penalty=0.5, exploration_share=0.0)
    trace = {
        "rerank": {
            "candidates": candidates,
            "config": config,
            "context": RerankContext(scenario="user", limit=3, now=NOW),
        }
    }
    lists = ablation.Ablation(ablation.variants_build([{"popularity_penalty": 0.0}])).lists_for(trace)
    assert lists["rules_all"] == [
        2,
        4,
    ]  # 1 loses 0.5 to the penalty, then goes as a copy of 2; 3 is unavailable
    assert lists["rules_without_popularity"] == [1, 4]  # 2 is a copy of 1
    assert lists["rules_without_inventory"] == [2, 3, 4]
    assert lists["rules_without_duplicates"] == [2, 4, 1]
    assert lists["rules_none"] == [1, 2, 3]
    assert lists["rules_set_1"] == lists["rules_without_popularity"]
    assert ablation.Ablation(ablation.variants_build()).lists_for({}) == {}


def test_table_gives_each_row_its_share_of_the_raw_ndcg():
    variants = ablation.variants_build()
    metrics = {
        "rules_all": {"ndcg@10": 0.09, "recall@10": 0.2, "coverage@10": 0.3, "diversity@10": 0.7},
        "rules_none": {"ndcg@10": 0.1, "recall@10": 0.25, "coverage@10": 0.2, "diversity@10": 0.6},
    }
    table = ablation.ablation_table(metrics, variants, k=10)
    rows = {r["method"]: r for r in table["rows"]}
    assert rows["rules_all"]["share_of_raw_ndcg"] == pytest.approx(0.9)
    assert rows["rules_none"]["share_of_raw_ndcg"] == 1.0
    assert rows["rules_without_diversity"]["share_of_raw_ndcg"] is None  # not scored: no row invented
    lines = ablation.ablation_lines(table)
    assert "% of raw NDCG@10" in lines[0] and "90.0%" in lines[1]


@pytest.fixture
def shop(db, settings, tmp_path):
    """The planted shop (tests/recommendations/test_ranker.py's): each evaluated user with two more early
    purchases, so that the ranker's own leave-one-out split has a history and a target for them."""
    settings.RECSYS_RANKER_DIR = tmp_path / "ranker"
    active_ranker_clear()
    shop = planted_shop()
    early = timezone.now() - timedelta(days=199)
    users = sorted({u for u in Event.objects.values_list("user_id", flat=True) if u.startswith("user-")})
    Event.objects.bulk_create(
        Event(
            event_id=f"early-{u}-{k}",
            user_id=u,
            session_id=f"early-{u}",
            item=shop.noise[(n * 2 + k) % len(shop.noise)],
            item_external_id=shop.noise[(n * 2 + k) % len(shop.noise)].external_id,
            event_type="purchase",
            timestamp=early + timedelta(hours=k),
        )
        for n, u in enumerate(users)
        for k in range(2)
    )
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

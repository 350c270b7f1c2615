"""The re-ranking ablation: variants re-applied from the serving pass's trace, and the stored table
(`evaluate --ablation` on a small generated shop: tests/analytics/test_evaluate_ablation.py; the report
page: tests/analytics/test_ablation_report.py)."""

from __future__ import annotations

import pytest

from recommendations.rerank.pipeline import STEPS, RerankConfig, RerankContext
from tests.recommendations.rerank.conftest import NOW, axis, cand, cands
from training import ablation


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

from dataclasses import replace
from datetime import timedelta

from recommendations.rerank.pipeline import RerankConfig, RerankContext, rerank
from recommendations.rerank.promotions import PromotionRule
from tests.recommendations.rerank.conftest import NOW, axis, cand

OLD = NOW - timedelta(days=400)


def _candidates():
    return [
        cand(1, 0.95, vector=axis(0), published_at=OLD, interaction_count=3, category_path=("A",)),
        cand(
            2, 0.94, vector=axis(0), published_at=OLD, interaction_count=3, category_path=("A",)
        ),  # dup of 1
        cand(3, 0.90, vector=axis(1), published_at=OLD, interaction_count=3, category_path=("B",)),
        cand(4, 0.85, vector=axis(2), published_at=OLD, interaction_count=3, available=False),
        cand(5, 0.80, vector=axis(3), published_at=OLD, interaction_count=3, category_path=("C",)),  # bought
        cand(6, 0.75, vector=axis(4), published_at=OLD, interaction_count=3, brand="Acme"),
        cand(7, 0.20, vector=axis(5), published_at=NOW, interaction_count=0),  # new, never seen
    ]


CONFIG = RerankConfig(
    freshness_weight=0.0, popularity_penalty=0.0, diversity_mode="none", exploration_share=0.0
)


def _ctx(**kw):
    kw.setdefault("scenario", "user")
    kw.setdefault("limit", 4)
    return RerankContext(now=NOW, **kw)


def test_pipeline_drops_unavailable_bought_and_duplicates_then_cuts_to_limit():
    out = rerank(_candidates(), config=CONFIG, context=_ctx(bought_pks={5}))
    assert [c.pk for c in out] == [1, 3, 6, 7]


def test_scenario_that_allows_repeat_purchase_keeps_bought_items():
    config = replace(CONFIG, exclude_bought_in=("similar",))
    out = rerank(_candidates(), config=config, context=_ctx(bought_pks={5}))
    assert 5 in [c.pk for c in out]


def test_promotion_boosts_and_pins_through_the_pipeline():
    rules = [
        PromotionRule(1, "brand", brand="Acme", boost=2.0),
        PromotionRule(2, "item", item_pk=7, pinned_slot=1),
    ]
    out = rerank(_candidates(), config=CONFIG, context=_ctx(promotions=rules))
    assert out[0].pk == 7 and out[0].reason["type"] == "promoted"
    assert out[1].pk == 6  # 0.75 * 2 beats everything else


def test_promotions_can_be_switched_off_by_the_profile():
    rules = [PromotionRule(2, "item", item_pk=7, pinned_slot=1)]
    out = rerank(
        _candidates(), config=replace(CONFIG, promotions_enabled=False), context=_ctx(promotions=rules)
    )
    assert 7 not in [c.pk for c in out]


def test_exploration_gives_the_last_slot_to_the_new_item():
    config = replace(CONFIG, exploration_share=0.25)
    out = rerank(_candidates(), config=config, context=_ctx(limit=4))
    assert out[-1].pk == 7 and out[-1].explored


def test_every_step_on_still_returns_limit_items_sorted_sensibly():
    out = rerank(_candidates(), config=RerankConfig(), context=_ctx(limit=3))
    assert len(out) == 3
    assert out[0].pk == 1


def test_caps_mode_applies_category_caps():
    config = replace(CONFIG, duplicate_similarity=1.0, diversity_mode="caps", max_per_category=1)
    out = rerank(_candidates(), config=config, context=_ctx(limit=3, scenario="similar"))
    paths = [c.category_path for c in out]
    assert len(set(paths)) == len(paths)

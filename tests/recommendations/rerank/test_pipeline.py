from dataclasses import replace
from datetime import timedelta

import numpy as np
import pytest

from recommendations.rerank.pipeline import STEPS, RerankConfig, RerankContext, rerank
from recommendations.rerank.promotions import PromotionRule
from tests.recommendations.rerank.conftest import NOW, axis, cand, cands

OLD = NOW - timedelta(days=400)


def _candidates():
    return cands(
        cand(1, 0.95, vector=axis(0), published_at=OLD, interaction_count=3, category_path=("A",)),
        cand(
            2, 0.94, vector=axis(0), published_at=OLD, interaction_count=3, category_path=("A",)
        ),  # dup of 1
        cand(3, 0.90, vector=axis(1), published_at=OLD, interaction_count=3, category_path=("B",)),
        cand(4, 0.85, vector=axis(2), published_at=OLD, interaction_count=3, available=False),
        cand(5, 0.80, vector=axis(3), published_at=OLD, interaction_count=3, category_path=("C",)),  # bought
        cand(6, 0.75, vector=axis(4), published_at=OLD, interaction_count=3, brand="Acme"),
        cand(7, 0.20, vector=axis(5), published_at=NOW, interaction_count=0),  # new, never seen
    )


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


# --- skip: the re-ranking ablation turns steps off one at a time ---


def test_skipping_nothing_is_the_full_pipeline():
    rules = [PromotionRule(2, "item", item_pk=7, pinned_slot=1)]
    context = _ctx(bought_pks={5}, promotions=rules)
    full = rerank(_candidates(), config=RerankConfig(), context=context)
    assert [c.pk for c in rerank(_candidates(), config=RerankConfig(), context=context, skip=())] == [
        c.pk for c in full
    ]


def test_skipping_every_step_leaves_the_candidates_by_score_cut_to_the_limit():
    out = rerank(_candidates(), config=RerankConfig(), context=_ctx(bought_pks={5}), skip=STEPS)
    assert [c.pk for c in out] == [1, 2, 3, 4]
    assert [c.score for c in out] == [0.95, 0.94, 0.90, 0.85]


def test_skipping_inventory_keeps_the_unavailable_item():
    out = rerank(_candidates(), config=CONFIG, context=_ctx(limit=6), skip={"inventory"})
    assert 4 in [c.pk for c in out]
    assert 4 not in [c.pk for c in rerank(_candidates(), config=CONFIG, context=_ctx(limit=6))]


def test_skipping_history_keeps_the_bought_item():
    out = rerank(_candidates(), config=CONFIG, context=_ctx(bought_pks={5}, limit=6), skip={"history"})
    assert 5 in [c.pk for c in out]


def test_skipping_duplicates_keeps_the_near_duplicate():
    out = rerank(_candidates(), config=CONFIG, context=_ctx(), skip={"duplicates"})
    assert [c.pk for c in out][:2] == [1, 2]


def test_skipping_diversity_keeps_the_score_order_mmr_would_change():
    config = replace(CONFIG, duplicate_similarity=1.0, diversity_mode="mmr", mmr_lambda=0.3)
    diverse = [c.pk for c in rerank(_candidates(), config=config, context=_ctx(limit=3))]
    plain = [c.pk for c in rerank(_candidates(), config=config, context=_ctx(limit=3), skip={"diversity"})]
    assert plain == [1, 2, 3]
    assert diverse != plain and 2 not in diverse  # MMR drops the copy of item 1


def test_skipping_exploration_and_promotions_and_score_steps():
    rules = [PromotionRule(2, "item", item_pk=7, pinned_slot=1)]
    explore = replace(CONFIG, exploration_share=0.25)
    assert rerank(_candidates(), config=explore, context=_ctx(), skip={"exploration"})[-1].pk != 7
    assert 7 not in [
        c.pk
        for c in rerank(_candidates(), config=CONFIG, context=_ctx(promotions=rules), skip={"promotions"})
    ]
    fresh = replace(CONFIG, freshness_weight=1.0)
    assert rerank(_candidates(), config=fresh, context=_ctx())[0].pk == 7
    assert rerank(_candidates(), config=fresh, context=_ctx(), skip={"freshness"})[0].pk == 1
    popular = replace(CONFIG, popularity_penalty=1.0)
    assert (
        rerank(_candidates(), config=popular, context=_ctx())[0].pk == 7
    )  # the only one without interactions
    assert rerank(_candidates(), config=popular, context=_ctx(), skip={"popularity"})[0].pk == 1


def test_an_unknown_step_is_refused_with_its_name():
    with pytest.raises(ValueError, match="unknown re-ranking step.*mmr"):
        rerank(_candidates(), config=CONFIG, context=_ctx(), skip={"mmr"})


def test_steps_are_named_in_the_order_rerank_runs_them():
    assert STEPS == (
        "inventory",
        "history",
        "freshness",
        "popularity",
        "promotions",
        "duplicates",
        "diversity",
        "exploration",
    )


def test_the_answer_does_not_depend_on_the_order_of_the_candidate_rows():
    # the features come back in no particular order: every step that ranks breaks ties by pk
    rules = [
        PromotionRule(1, "brand", brand="Acme", boost=2.0),
        PromotionRule(2, "item", item_pk=7, pinned_slot=2),
    ]
    context = _ctx(bought_pks={5}, promotions=rules, limit=5)
    config = RerankConfig(exploration_share=0.2)
    candidates = _candidates()
    expected = [
        (c.pk, c.score, c.explored, c.reason) for c in rerank(candidates, config=config, context=context)
    ]
    rng = np.random.default_rng(3)
    for _ in range(20):
        shuffled = candidates.take(rng.permutation(len(candidates)))
        out = rerank(shuffled, config=config, context=context)
        assert [(c.pk, c.score, c.explored, c.reason) for c in out] == expected


def test_steps_leave_their_input_columns_untouched():
    candidates = _candidates()
    before = candidates.score.copy()
    rules = [PromotionRule(1, "brand", brand="Acme", boost=2.0)]
    rerank(
        candidates,
        config=RerankConfig(freshness_weight=1.0, popularity_penalty=0.5),
        context=_ctx(promotions=rules),
    )
    assert candidates.score.tolist() == before.tolist()
    assert not candidates.promotion_id.any()


def test_default_profile_does_not_lift_a_new_arrival_over_better_scored_items():
    # the default (round 5, chosen on the re-ranking ablation): no freshness boost; a merchandiser who
    # turns it back on (0.05, the old default) lifts the item published today over a better-scored one
    rows = [
        cand(pk, score, vector=axis(pk), published_at=OLD, interaction_count=3)
        for pk, score in ((1, 0.9), (2, 0.8), (3, 0.7), (4, 0.6))
    ]
    new_arrival = cand(5, 0.58, vector=axis(5), published_at=NOW, interaction_count=3)
    candidates = cands(*rows, new_arrival)
    served = rerank(candidates, config=RerankConfig(), context=_ctx())
    assert [c.pk for c in served] == [1, 2, 3, 4]
    boosted = rerank(candidates, config=replace(RerankConfig(), freshness_weight=0.05), context=_ctx())
    assert [c.pk for c in boosted] == [1, 2, 3, 5]

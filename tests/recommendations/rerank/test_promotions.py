import pytest

from recommendations.rerank.promotions import PromotionRule, promotions_boost, promotions_pin
from tests.recommendations.rerank.conftest import cand, cands


def test_rules_match_an_item_a_category_subtree_or_a_brand():
    phone = cand(1, category_path=("Electronics", "Phones", "Apple"), brand="Apple")
    laptop = cand(2, category_path=("Electronics", "Laptops"), brand="Dell")
    assert PromotionRule(1, "item", item_pk=1).matches(phone)
    assert not PromotionRule(1, "item", item_pk=1).matches(laptop)
    assert PromotionRule(2, "category", category_path=("Electronics", "Phones")).matches(phone)
    assert not PromotionRule(2, "category", category_path=("Electronics", "Phones")).matches(laptop)
    assert not PromotionRule(2, "category", category_path=("Phones",)).matches(phone)  # prefix, not anywhere
    assert PromotionRule(3, "brand", brand="apple").matches(phone)


def test_boost_multiplies_the_score_and_marks_the_item_promoted():
    items = [cand(1, 0.5, brand="Acme"), cand(2, 0.6, brand="Other")]
    out = promotions_boost(cands(*items), rules=[PromotionRule(7, "brand", brand="Acme", boost=1.5)])
    assert out[0].score == pytest.approx(0.75)
    assert out[0].promoted and out[0].reason == {"type": "promoted", "promotion_id": 7}
    assert not out[1].promoted and out[1].score == 0.6


def test_boost_below_one_demotes():
    out = promotions_boost(cands(cand(1, 0.5)), rules=[PromotionRule(1, "item", item_pk=1, boost=0.5)])
    assert out[0].score == pytest.approx(0.25)


def test_pinned_item_is_placed_at_its_slot_even_from_outside_the_list():
    ranked = [cand(i, 1 - i / 10) for i in range(5)]
    pool = [cand(99, 0.01, pinned_slot=2, promotion_id=5)]
    out = promotions_pin(cands(*ranked), cands(*pool), limit=5)
    assert [c.pk for c in out] == [0, 99, 1, 2, 3]


def test_one_item_per_pinned_slot_and_the_best_wins():
    ranked = [cand(i, 1 - i / 10) for i in range(4)]
    pool = [cand(50, 0.2, pinned_slot=1), cand(51, 0.3, pinned_slot=1)]
    out = promotions_pin(cands(*ranked), cands(*pool), limit=4)
    assert out[0].pk == 51 and 50 not in [c.pk for c in out]


def test_nothing_pinned_only_cuts_to_limit():
    ranked = [cand(i) for i in range(5)]
    assert [c.pk for c in promotions_pin(cands(*ranked), cands(), limit=3)] == [0, 1, 2]

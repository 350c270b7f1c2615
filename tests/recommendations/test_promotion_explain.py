"""The preview's "why not": each reason a live promotion leaves a list alone (pure, no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from recommendations.promotion_explain import (
    ItemFacts,
    ListFacts,
    PromotionFacts,
    item_unservable,
    promotion_explain,
    promotions_explain,
)

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


def _promotion(promotion_id=1, **fields):
    base = dict(
        promotion_id=promotion_id,
        name=f"p{promotion_id}",
        target_type="item",
        target="item kettle",
        is_active=True,
        starts_at=NOW - timedelta(days=1),
        ends_at=None,
        surface_scope="all",
        surfaces=(),
        pinned_slot=1,
        item=ItemFacts(external_id="kettle", category_path=("Kitchen",)),
    )
    base.update(fields)
    return PromotionFacts(**base)


def _list(items=("a", "b", "c"), reasons=None, **fields):
    reasons = reasons or {}
    rows = [{"id": i, "reason": reasons.get(i, {"type": "similar"})} for i in items]
    return ListFacts(items=rows, now=NOW, limit=3, **fields)


def test_a_pin_in_the_list_is_applied():
    e = promotion_explain(_promotion(), _list(items=("kettle", "a", "b")))
    assert e.applied and e.code == "applied" and "position 1" in e.text


def test_out_of_stock_item_is_named():
    p = _promotion(item=ItemFacts(external_id="kettle", in_stock=False))
    e = promotion_explain(p, _list())
    assert not e.applied and e.code == "out_of_stock" and "kettle" in e.text


def test_out_of_stock_is_no_reason_when_the_profile_serves_it():
    p = _promotion(item=ItemFacts(external_id="kettle", in_stock=False))
    assert promotion_explain(p, _list(in_stock_only=False)).code != "out_of_stock"


def test_inactive_item_is_named():
    p = _promotion(item=ItemFacts(external_id="kettle", is_active=False))
    assert promotion_explain(p, _list()).code == "item_inactive"


def test_category_filter_of_the_list_filters_it_out():
    e = promotion_explain(_promotion(), _list(category=("Wear",)))
    assert e.code == "filtered_out" and "Wear" in e.text


def test_another_surface():
    p = _promotion(surface_scope="named", surfaces=("home",))
    e = promotion_explain(p, _list(surface="pdp"))
    assert e.code == "other_surface" and "home" in e.text and "pdp" in e.text


def test_search_is_left_out_unless_named():
    assert promotion_explain(_promotion(), _list(search=True)).code == "search_not_named"
    named = _promotion(surfaces=("search",))
    assert promotion_explain(named, _list(items=("kettle",), search=True)).applied


def test_outside_its_window():
    later = _promotion(starts_at=NOW + timedelta(days=2))
    ended = _promotion(starts_at=NOW - timedelta(days=9), ends_at=NOW - timedelta(days=1))
    assert promotion_explain(later, _list()).code == "not_started"
    assert promotion_explain(ended, _list()).code == "ended"


def test_draft_unless_drafts_are_included():
    draft = _promotion(is_active=False)
    assert promotion_explain(draft, _list()).code == "draft"
    assert promotion_explain(draft, _list(items=("kettle",), include_drafts=True)).applied


def test_a_lower_pin_loses_its_slot_to_a_higher_one():
    winner = _promotion(2, name="Big sale", item=ItemFacts(external_id="wok"))
    loser = _promotion(1)
    facts = _list(items=("wok", "a", "b"), reasons={"wok": {"type": "promoted", "promotion_id": 2}})
    explained = {e.promotion_id: e for e in promotions_explain([loser, winner], facts)}
    assert explained[2].applied
    assert explained[1].code == "slot_lost" and "Big sale" in explained[1].text and "wok" in explained[1].text


def test_a_pin_that_lost_its_slot_but_is_still_listed_lower_says_so():
    winner = _promotion(2, name="Big sale", item=ItemFacts(external_id="wok"))
    loser = _promotion(1)
    reasons = {
        "wok": {"type": "promoted", "promotion_id": 2},
        "kettle": {"type": "promoted", "promotion_id": 1},
    }
    explained = {
        e.promotion_id: e for e in promotions_explain([loser, winner], _list(("wok", "kettle"), reasons))
    }
    assert explained[1].code == "slot_lost" and "position 2 instead" in explained[1].text
    assert explained[2].applied


def test_profile_with_promotions_off():
    assert promotion_explain(_promotion(), _list(promotions_enabled=False)).code == "profile_off"


def test_brand_promotion_with_no_item_in_the_list():
    p = _promotion(target_type="brand", target="brand Sockit", item=None, pinned_slot=None)
    assert promotion_explain(p, _list()).code == "no_match"
    hit = _list(reasons={"b": {"type": "promoted", "promotion_id": 1}})
    assert promotion_explain(p, hit).applied


def test_not_applied_come_first():
    applied = _promotion(2, item=ItemFacts(external_id="a"))
    missing = _promotion(1, item=ItemFacts(external_id="kettle", in_stock=False))
    assert [e.promotion_id for e in promotions_explain([applied, missing], _list())] == [1, 2]


def test_unservable_item_reasons():
    assert item_unservable(ItemFacts(external_id="x")) == []
    problems = item_unservable(
        ItemFacts(external_id="x", is_active=False, in_stock=False, has_embedding=False)
    )
    assert len(problems) == 3 and "out of stock" in problems[1]

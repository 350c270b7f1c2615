"""Reasons said for a person."""

from __future__ import annotations

from storefront.reasons import reason_item_ids, reason_text


def test_reason_names_the_item_it_points_at():
    titles = {"sku-1": "Trail running shoes"}
    reason = {"type": "because_you_viewed", "item_id": "sku-1"}
    assert reason_text(reason, titles=titles) == "Because you viewed Trail running shoes"
    assert (
        reason_text({"type": "similar_to", "item_id": "sku-1"}, titles=titles)
        == "Similar to Trail running shoes"
    )
    assert reason_text({"type": "bought_together", "item_id": "gone"}, titles=titles).startswith(
        "Often bought with"
    )


def test_plain_and_unknown_reasons():
    assert reason_text({"type": "trending"}, titles={}) == "Trending now"
    assert reason_text({"type": "something_new"}, titles={}) == ""
    assert reason_text(None, titles={}) == ""
    assert reason_item_ids([{"type": "trending"}, {"type": "because_you_bought", "item_id": "a"}]) == {"a"}

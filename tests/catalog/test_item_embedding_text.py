"""Item.embedding_text and the content hash that decides re-embedding (catalog/models.py)."""

from __future__ import annotations

from decimal import Decimal

from catalog.models import MAX_EMBEDDING_TEXT_CHARS, Item


def _item(**fields) -> Item:
    defaults = {
        "external_id": "sku-1",
        "title": "Trail running shoe",
        "category_path": ["Sports", "Running", "Shoes"],
        "brand": "Fastfoot",
        "condition": "new",
        "description": "Light shoe with a grippy sole for muddy trails.",
        "attributes": {
            "color": "blue",
            "size": 42,
            "waterproof": True,
            "sku_code": "FF-123",
            "manual_url": "x",
        },
    }
    return Item(**{**defaults, **fields})


def test_text_puts_title_category_brand_and_attributes_before_the_description():
    text = _item().embedding_text()
    assert text == (
        "Trail running shoe. Category: Sports > Running > Shoes. Brand: Fastfoot. Condition: new. "
        "color: blue; size: 42; waterproof: yes. Light shoe with a grippy sole for muddy trails."
    )


def test_identifier_and_url_attributes_are_left_out_of_the_text():
    text = _item(
        attributes={"sku": "A1", "image_url": "https://x/y.jpg", "ean": "123", "material": "leather"}
    ).embedding_text()
    assert "material: leather" in text
    assert "A1" not in text and "https" not in text and "123" not in text


def test_long_description_is_cut_to_the_model_budget_but_the_head_is_kept():
    text = _item(description="word " * 2000).embedding_text()
    assert len(text) <= MAX_EMBEDDING_TEXT_CHARS
    assert text.startswith("Trail running shoe. Category: Sports > Running > Shoes. Brand: Fastfoot.")
    assert not text.endswith(" ")


def test_hash_ignores_price_stock_and_location():
    a, b = _item(), _item(price=Decimal("99.00"), stock=0, in_stock=False, location="Berlin")
    assert a.compute_content_hash() == b.compute_content_hash()


def test_hash_changes_with_every_field_in_the_text():
    base = _item().compute_content_hash()
    for change in (
        {"title": "Road running shoe"},
        {"category_path": ["Sports", "Running"]},
        {"brand": "Other"},
        {"condition": "used"},
        {"description": "Heavy boot."},
        {"attributes": {"color": "red"}},
    ):
        assert _item(**change).compute_content_hash() != base, change


def test_hash_is_stable_under_whitespace_and_attribute_order():
    a = _item(title="Trail  running shoe ", attributes={"size": 42, "color": "blue"})
    b = _item(title="Trail running shoe", attributes={"color": "blue", "size": 42})
    assert a.embedding_text() == b.embedding_text()
    assert a.compute_content_hash() == b.compute_content_hash()

"""Generated item pictures: one SVG per category and colour, served locally, drawn without the network."""

from __future__ import annotations

import pytest

from storefront.images import COLOURS, colour_of, image_svg, item_image_url

pytestmark = pytest.mark.django_db


def test_colour_comes_from_the_attribute_else_from_the_title():
    assert colour_of(attributes={"color": "Navy"}, title="Shirt, Red") == "navy"
    assert colour_of(attributes={}, title="Nikos Pro Sneakers, Red") == "red"
    assert colour_of(attributes=None, title="A plain lamp") == ""


def test_items_without_a_picture_get_the_generated_one_and_items_with_one_keep_it():
    own = item_image_url(image_url="https://cdn.example/p.jpg", category_path=["Fashion"], title="x")
    assert own == "https://cdn.example/p.jpg"
    url = item_image_url(image_url="", category_path=["Fashion", "Men", "Shoes"], title="Sneakers, Red")
    assert url == "/storefront/image.svg?c=Fashion%2FMen%2FShoes&color=red"


def test_the_picture_is_drawn_in_the_items_colour_with_its_department_pictogram():
    red_shoe = image_svg(category="Fashion/Men/Shoes", colour="red")
    blue_shoe = image_svg(category="Fashion/Men/Shoes", colour="blue")
    red_book = image_svg(category="Books/Fiction", colour="red")
    assert COLOURS["red"] in red_shoe and COLOURS["blue"] in blue_shoe and COLOURS["red"] not in blue_shoe
    assert red_shoe != red_book  # another department, another pictogram
    assert ">Shoes</text>" in red_shoe


def test_image_view_serves_cacheable_svg_and_escapes_the_label(client):
    response = client.get(
        "/storefront/image.svg", {"c": "Toys/<img src=x onerror=alert(1)>", "color": "green"}
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "image/svg+xml"
    assert "max-age=86400" in response["Cache-Control"]
    body = response.content.decode()
    assert "<img" not in body and "&lt;img src=x onerror=alert(1)&gt;" in body
    assert COLOURS["green"] in body
    # no network: nothing in the picture points anywhere
    assert "href" not in body and "http" not in body.replace("http://www.w3.org/2000/svg", "")


def test_image_view_draws_a_default_for_unknown_input(client):
    response = client.get("/storefront/image.svg", {"c": "x" * 5000, "color": "no-such-colour"})
    assert response.status_code == 200 and response.content.startswith(b"<svg")
    assert client.get("/storefront/image.svg").status_code == 200

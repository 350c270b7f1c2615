"""Generated item pictures: an SVG per category and colour, for items that have no `image_url`.

Nothing is fetched: the picture is drawn from the item's category path (a known category, else the
department, picks the pictogram; the leaf is written under it) and its colour (the `color` attribute, or a colour named in the
title), so a catalog without photos, like the demo shop's, still shows distinct, recognisable cards.
`item_image_url` is what pages and the storefront's JSON use; `image_svg` draws it (the `image` view).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode
from xml.sax.saxutils import escape

from django.urls import reverse

# Named colours a shop uses -> fill. Unknown names fall back to a tint picked from the category.
COLOURS = {
    "black": "#1f2937",
    "white": "#f8fafc",
    "grey": "#9ca3af",
    "gray": "#9ca3af",
    "navy": "#1e3a8a",
    "red": "#dc2626",
    "green": "#16a34a",
    "beige": "#d6c7a1",
    "blue": "#2563eb",
    "pink": "#ec4899",
    "silver": "#cbd5e1",
    "brown": "#92400e",
    "orange": "#ea580c",
    "yellow": "#eab308",
    "purple": "#7c3aed",
}
_TINTS = ["#0f766e", "#b45309", "#7c3aed", "#be123c", "#1d4ed8", "#4d7c0f", "#a21caf", "#c2410c"]
_TITLE_COLOUR = re.compile(r"\b(" + "|".join(COLOURS) + r")\b", re.IGNORECASE)
MAX_CATEGORY_CHARS = 300

# Department (first word of the path's root, lower case) -> pictogram, drawn in a 100x100 box at (50, 42).
_PICTOGRAMS = {
    # a device with a screen
    "electronics": '<rect x="22" y="14" width="56" height="40" rx="4" fill="{fill}"/>'
    '<rect x="27" y="19" width="46" height="30" rx="2" fill="#ffffff" opacity=".35"/>'
    '<rect x="38" y="56" width="24" height="5" rx="2" fill="{fill}"/>',
    # a pot with handles
    "home": '<rect x="24" y="26" width="52" height="32" rx="8" fill="{fill}"/>'
    '<rect x="14" y="30" width="12" height="6" rx="3" fill="{fill}"/><rect x="74" y="30" width="12" '
    'height="6" rx="3" fill="{fill}"/><rect x="30" y="18" width="40" height="8" rx="4" fill="{fill}"/>',
    # a shirt
    "fashion": '<path d="M36 14 L22 22 L14 36 L26 42 L30 36 L30 66 L70 66 L70 36 L74 42 L86 36 L78 22 '
    'L64 14 Q50 26 36 14 Z" fill="{fill}"/>',
    # a ball
    "sports": '<circle cx="50" cy="40" r="26" fill="{fill}"/><path d="M24 40 Q50 24 76 40 M50 14 Q38 40 '
    '50 66" stroke="#ffffff" stroke-width="3" fill="none" opacity=".6"/>',
    # a book
    "books": '<rect x="28" y="12" width="44" height="56" rx="3" fill="{fill}"/>'
    '<rect x="28" y="12" width="8" height="56" fill="#000000" opacity=".2"/>'
    '<rect x="42" y="22" width="22" height="4" fill="#ffffff" opacity=".6"/>',
    # a bottle
    "beauty": '<rect x="42" y="10" width="16" height="10" rx="2" fill="{fill}"/>'
    '<rect x="32" y="20" width="36" height="48" rx="10" fill="{fill}"/>'
    '<rect x="38" y="34" width="24" height="16" rx="3" fill="#ffffff" opacity=".5"/>',
    # building blocks
    "toys": '<rect x="22" y="38" width="28" height="28" rx="3" fill="{fill}"/><rect x="50" y="38" '
    'width="28" height="28" rx="3" fill="{fill}" opacity=".75"/><rect x="36" y="12" width="28" '
    'height="26" rx="3" fill="{fill}" opacity=".9"/>',
    # a cup
    "grocery": '<path d="M26 20 L74 20 L68 66 L32 66 Z" fill="{fill}"/>'
    '<path d="M74 28 Q90 30 86 44 Q82 54 70 52" stroke="{fill}" stroke-width="6" fill="none"/>',
}
# A category anywhere in the path (lower case) -> a more specific pictogram than its department's.
_BY_CATEGORY = {
    "shoes": '<path d="M14 52 L14 34 Q26 36 34 28 L44 40 Q62 46 84 48 Q88 52 86 58 L14 58 Z" fill="{fill}"/>'
    '<rect x="14" y="58" width="72" height="6" rx="2" fill="#000000" opacity=".25"/>',
    "running": '<path d="M14 52 L14 34 Q26 36 34 28 L44 40 Q62 46 84 48 Q88 52 86 58 L14 58 Z" fill="{fill}"/>'
    '<rect x="14" y="58" width="72" height="6" rx="2" fill="#000000" opacity=".25"/>',
    "cycling": '<circle cx="28" cy="50" r="14" stroke="{fill}" stroke-width="5" fill="none"/><circle cx="72" '
    'cy="50" r="14" stroke="{fill}" stroke-width="5" fill="none"/><path d="M28 50 L44 26 L64 26 L72 50 M44 '
    '26 L52 50 L64 26" stroke="{fill}" stroke-width="4" fill="none"/>',
    "camping & hiking": '<path d="M50 14 L86 66 L14 66 Z" fill="{fill}"/><path d="M50 34 L60 66 L40 66 Z" '
    'fill="#ffffff" opacity=".45"/>',
    "laptops": '<rect x="24" y="18" width="52" height="34" rx="3" fill="{fill}"/><rect x="28" y="22" width="44" '
    'height="26" fill="#ffffff" opacity=".35"/><path d="M14 56 L86 56 L80 64 L20 64 Z" fill="{fill}"/>',
    "headphones": '<path d="M22 52 L22 40 Q22 14 50 14 Q78 14 78 40 L78 52" stroke="{fill}" stroke-width="6" '
    'fill="none"/><rect x="16" y="44" width="16" height="24" rx="5" fill="{fill}"/><rect x="68" y="44" '
    'width="16" height="24" rx="5" fill="{fill}"/>',
    "watches": '<rect x="40" y="8" width="20" height="64" rx="4" fill="{fill}" opacity=".7"/><circle cx="50" '
    'cy="40" r="18" fill="{fill}"/><circle cx="50" cy="40" r="13" fill="#ffffff" opacity=".55"/>'
    '<path d="M50 32 L50 40 L56 44" stroke="#1f2937" stroke-width="2" fill="none"/>',
    "bags": '<path d="M36 28 Q36 12 50 12 Q64 12 64 28" stroke="{fill}" stroke-width="5" fill="none"/>'
    '<rect x="22" y="26" width="56" height="42" rx="6" fill="{fill}"/>',
    "furniture": '<rect x="16" y="34" width="68" height="22" rx="6" fill="{fill}"/><rect x="22" y="22" '
    'width="56" height="16" rx="5" fill="{fill}" opacity=".8"/><rect x="20" y="56" width="6" height="10" '
    'fill="{fill}"/><rect x="74" y="56" width="6" height="10" fill="{fill}"/>',
    "knives": '<path d="M14 50 L66 36 Q80 34 86 44 L60 50 Z" fill="{fill}"/><rect x="10" y="48" width="26" '
    'height="10" rx="4" fill="#44403c"/>',
    "decor": '<path d="M34 14 L66 14 L76 40 L24 40 Z" fill="{fill}"/><rect x="47" y="40" width="6" height="20" '
    'fill="#78716c"/><rect x="34" y="60" width="32" height="6" rx="3" fill="#78716c"/>',
}
# anything else: a tag
_DEFAULT_PICTOGRAM = (
    '<path d="M20 20 L56 20 L82 46 L56 72 L20 36 Z" fill="{fill}"/><circle cx="32" cy="32" r="5" '
    'fill="#ffffff" opacity=".7"/>'
)


def colour_of(*, attributes: Mapping[str, Any] | None = None, title: str = "") -> str:
    """The item's colour name, lower case: its `color` (or `colour`) attribute, else the first colour
    named in its title; "" when neither says."""
    for key in ("color", "colour"):
        value = (attributes or {}).get(key)
        if isinstance(value, str) and value.strip():
            return value.strip().lower()
    match = _TITLE_COLOUR.search(title or "")
    return match[1].lower() if match else ""


def item_image_url(
    *, image_url: str, category_path: Sequence[str], title: str = "", attributes: Mapping | None = None
) -> str:
    """The item's own picture when it has one, else its generated picture (same category and colour:
    the same URL, cached by the browser)."""
    if image_url:
        return image_url
    query = {"c": "/".join(category_path)[:MAX_CATEGORY_CHARS]}
    colour = colour_of(attributes=attributes, title=title)
    if colour:
        query["color"] = colour
    return f"{reverse('storefront:image')}?{urlencode(query)}"


def image_svg(*, category: str, colour: str) -> str:
    """The picture: the department's pictogram in the item's colour, on a background tinted by the
    category, with the leaf category written under it. `category` is "/"-separated; all text is escaped."""
    parts = [p.strip() for p in category.split("/") if p.strip()][:8]
    digest = int(hashlib.sha256("/".join(parts).encode()).hexdigest()[:8], 16)
    tint = _TINTS[digest % len(_TINTS)]
    fill = COLOURS.get(colour.lower(), tint)
    root = (parts[0].split()[0].lower() if parts else "").strip("&")
    specific = next((_BY_CATEGORY[p.lower()] for p in reversed(parts) if p.lower() in _BY_CATEGORY), None)
    pictogram = (specific or _PICTOGRAMS.get(root, _DEFAULT_PICTOGRAM)).format(fill=fill)
    # white and pale items need an outline to stand out from the background
    outline = (
        '<g stroke="#94a3b8" stroke-width="1.2">' if colour.lower() in ("white", "silver", "beige") else "<g>"
    )
    label = escape((parts[-1] if parts else "Item")[:40])
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 100 100" width="300" height="300">'
        f'<rect width="100" height="100" fill="{tint}" opacity=".12"/>'
        f'<g transform="translate(0 4)">{outline}{pictogram}</g></g>'
        f'<text x="50" y="90" font-family="system-ui, sans-serif" font-size="7" fill="#44403c" '
        f'text-anchor="middle">{label}</text></svg>'
    )

"""Hypothesis strategies for hostile input: what broken clients and attackers send and plain st.text(),
st.integers() or st.datetimes() never draw. Shared by the property tests of the validators and imports
(test_parser_properties.py) and of the API (test_api_properties.py).

- lone UTF-16 surrogates ("emoji cut \\ud83d": a JavaScript string cut through an emoji) and NUL, which
  PostgreSQL cannot store;
- time-zone offsets up to +-23:59 (Python reads them, PostgreSQL's timestamptz input stops at +-15:59) and
  dates from year 1 to 9999 (far future: "new arrivals" forever);
- JSON nested hundreds of levels deep (a recursive walk overflows Python's stack);
- numbers far beyond any column (2**63, 10**40, 1e308) and numeric strings beyond floats ("1e400").
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import quote

from hypothesis import strategies as st

from interactions.models import EventType

surrogates = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
plain_text = st.text(max_size=30)
hostile_text = st.one_of(
    plain_text,
    plain_text,  # drawn twice as often: a row must often be valid to reach the database
    st.builds(lambda a, s, b: a + s + b, st.text(max_size=10), surrogates, st.text(max_size=10)),
    st.builds(lambda a, b: a + "\x00" + b, st.text(max_size=10), st.text(max_size=10)),
    st.sampled_from(["", " ", "\u200b", "\ufeff", "\U0001f600", "a > b", "x" * 600]),
)
huge_numbers = st.one_of(
    st.integers(min_value=-(10**40), max_value=10**40),
    st.integers(min_value=-5, max_value=1000),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([2**31, 2**63, -(2**63), 10**30, 1e308, -1e308, 5e-324]),
    st.sampled_from(["1e400", "-1e400", "99999999999999999999.99", "-0", "0x10", " 7 "]),
)


def _with_offset(moment: datetime, minutes: int) -> str:
    return moment.replace(tzinfo=timezone(timedelta(minutes=minutes))).isoformat()


# Up to +-23:59, the most datetime.fromisoformat reads; years 1 to 9999.
hostile_datetimes = st.one_of(
    st.builds(
        _with_offset,
        st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
        st.integers(min_value=-(24 * 60 - 1), max_value=24 * 60 - 1),
    ),
    st.builds(
        _with_offset,
        st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2025, 1, 1)),
        st.sampled_from([0, 14 * 60, -12 * 60, 16 * 60, -16 * 60, 23 * 60 + 59, -(23 * 60 + 59)]),
    ),
    st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(9999, 12, 31)).map(
        lambda d: d.isoformat()
    ),
    st.sampled_from(["9999-12-31", "9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59", "2024-02-30"]),
)


def nested(depth: int, *, as_list: bool) -> object:
    value: object = "leaf"
    for level in range(depth):
        value = [value] if as_list and level % 2 else {"k": value}
    return value


deep_json = st.builds(nested, st.integers(min_value=30, max_value=600), as_list=st.booleans())
hostile_json = st.one_of(
    st.recursive(
        st.none() | st.booleans() | huge_numbers | hostile_text,
        lambda children: st.lists(children, max_size=4) | st.dictionaries(hostile_text, children, max_size=4),
        max_leaves=12,
    ),
    deep_json,
)


hostile_items = st.fixed_dictionaries(
    {"id": hostile_text, "title": hostile_text},
    optional={
        "description": hostile_text,
        "category_path": st.lists(hostile_text, max_size=4) | hostile_text,
        "price": huge_numbers,
        "currency": st.sampled_from(["EUR", "usd", "X"]) | hostile_text,
        "brand": hostile_text,
        "location": hostile_text,
        "condition": hostile_text,
        "image_url": st.builds("https://img.example/{}".format, hostile_text),
        "attributes": st.dictionaries(hostile_text, hostile_json, max_size=4) | deep_json,
        "in_stock": st.booleans() | hostile_text,
        "stock": huge_numbers,
        "published_at": hostile_datetimes,
    },
)
hostile_events = st.fixed_dictionaries(
    {
        "event_id": hostile_text,
        "user_id": hostile_text,
        "item_id": hostile_text,
        "event_type": st.sampled_from(EventType.values),
        "timestamp": hostile_datetimes,
    },
    optional={
        "session_id": hostile_text,
        "device_type": hostile_text,
        "recommendation_id": st.uuids().map(str) | hostile_text,
        "surface": hostile_text,
        "position": huge_numbers,
        "value": huge_numbers,
        "quantity": huge_numbers,
        "extra": hostile_json,
    },
)
# The options every recommendation list takes (query string, or the session endpoint's body).
hostile_list_options = st.fixed_dictionaries(
    {},
    optional={
        "limit": huge_numbers | hostile_text,
        "surface": hostile_text,
        "exclude": hostile_text | st.lists(hostile_text, max_size=3),
        "category": hostile_text,
        "min_price": huge_numbers | hostile_text,
        "max_price": huge_numbers | hostile_text,
        "session_id": hostile_text,
        "item": hostile_text,
    },
)


def query_string(options: dict) -> str:
    """`options` as a browser or a careless client would put them in a URL: UTF-8, a lone surrogate as the
    bytes a surrogate-passing encoder writes (invalid UTF-8 on the wire)."""
    pairs = []
    for key, value in options.items():
        values = value if isinstance(value, list) else [value]
        for one in values:
            text = one if isinstance(one, str) else str(one)
            pairs.append(f"{quote(key)}={quote(text.encode('utf-8', 'surrogatepass'), safe='')}")
    return "&".join(pairs)


def now_plus(seconds: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)

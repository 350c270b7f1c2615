"""Property tests (hypothesis) for everything that parses untrusted input outside the API: the import
reader (core/feeds.py), the Online Retail adapter's row mapping, and the event and item validators.
Whatever the input, they answer with records, rejections or a FeedError, never with another exception.
Examples per property: RECSYS_PROPERTY_EXAMPLES (CI: 200)."""

from __future__ import annotations

import csv
import io
import json
import os
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings as django_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.feeds import Feed, FeedError
from core.payloads import MAX_ATTRIBUTES_DEPTH, check_event, check_item
from interactions.management.commands.import_online_retail import COLUMNS, RowError
from interactions.management.commands.import_online_retail import Command as OnlineRetailCommand
from tests.security.hostile import hostile_events, hostile_items, hostile_json, now_plus

EXAMPLES = int(os.environ.get("RECSYS_PROPERTY_EXAMPLES", "200"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# JSON as json.loads returns it (a JSONL line, an API body), hostile leaves and depths included.
json_values = hostile_json
text_cells = st.text(max_size=40)  # any unicode, quotes, commas, newlines, NUL


def read_all(tmp_path, name: str, content: bytes) -> list:
    path = tmp_path / name
    path.write_bytes(content)
    with Feed(path) as feed:
        return list(feed.records())


def assert_well_formed(records, n_lines: int) -> None:
    previous = 0
    for record in records:
        assert record.line > previous and record.line <= max(n_lines, 1)
        previous = record.line
        assert (record.data is None) == bool(record.error)
        assert record.data is None or isinstance(record.data, dict)


@pytest.mark.parametrize("name", ["x.jsonl", "x.csv"])
@SETTINGS
@given(content=st.binary(max_size=400))
def test_any_bytes_give_records_or_a_feed_error(tmp_path_factory, name, content):
    tmp_path = tmp_path_factory.mktemp("f")
    try:
        records = read_all(tmp_path, name, content)
    except FeedError:
        return
    # newline="": a line ends at \n, \r or \r\n
    assert_well_formed(records, content.count(b"\n") + content.count(b"\r") + 1)


@SETTINGS
@given(rows=st.lists(st.dictionaries(st.text(max_size=8), json_values, max_size=5), max_size=8))
def test_jsonl_objects_round_trip_one_record_per_line(tmp_path_factory, rows):
    tmp_path = tmp_path_factory.mktemp("f")
    content = "".join(json.dumps(row) + "\n" for row in rows).encode()
    records = read_all(tmp_path, "x.jsonl", content)
    assert [r.data for r in records] == rows
    assert [r.line for r in records] == list(range(1, len(rows) + 1))


@SETTINGS
@given(
    header=st.lists(
        st.text(alphabet="abcdefgh_", min_size=1, max_size=6), min_size=1, max_size=4, unique=True
    ),
    data=st.data(),
)
def test_csv_rows_round_trip_with_quotes_commas_and_newlines(tmp_path_factory, header, data):
    cell = st.text(
        alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00\r"), max_size=20
    )
    rows = data.draw(st.lists(st.lists(cell, min_size=len(header), max_size=len(header)), max_size=6))
    rows = [row for row in rows if any(c.strip() for c in row)]  # blank rows are skipped by design
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    records = read_all(tmp_path_factory.mktemp("f"), "x.csv", buffer.getvalue().encode())
    assert [r.data for r in records] == [dict(zip(header, row, strict=True)) for row in rows]


@SETTINGS
@given(row=st.fixed_dictionaries({column: text_cells for column in COLUMNS}))
def test_the_online_retail_adapter_maps_or_rejects_any_row(row):
    command = OnlineRetailCommand()
    command._dates, command._items_sent = {}, set()
    events, items = [], {}
    try:
        outcome = command._row(2, row, events, items)
    except RowError as exc:
        assert str(exc)
        assert events == []
        return
    assert outcome in {"", "guest", "cancelled", "not_positive", "non_product"}
    assert len(events) == (1 if outcome in {"", "guest"} else 0)
    for event in events:
        clean, errors = check_event({k: v for k, v in event.items() if v is not None})
        assert errors == {} or set(errors) <= {"timestamp", "user_id", "event_id", "item_id"}, errors


def assert_clean_or_errors(clean, errors) -> None:
    assert (clean is None) == bool(errors)
    for field, reasons in errors.items():
        assert isinstance(field, str) and reasons and all(isinstance(r, str) and r for r in reasons)


@SETTINGS
@given(raw=json_values | st.dictionaries(st.sampled_from(["event_id", "user_id", "session_id", "item_id",
       "event_type", "timestamp", "value", "quantity", "position", "recommendation_id", "extra"]), json_values))  # fmt: skip
def test_the_event_validator_answers_clean_values_or_field_errors_for_any_json(raw):
    assert_clean_or_errors(*check_event(raw))


valid_events = st.fixed_dictionaries(
    {
        "event_id": st.text(min_size=1, max_size=128).filter(lambda s: s.strip() and "\x00" not in s),
        "user_id": st.text(alphabet="abcxyz0123456789-", min_size=1, max_size=128),
        "item_id": st.text(alphabet="abcxyz0123456789-", min_size=1, max_size=255),
        "event_type": st.sampled_from(["view", "click", "add_to_favorites", "add_to_cart", "purchase"]),
        "timestamp": st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2026, 1, 1)).map(
            lambda d: d.replace(tzinfo=UTC).isoformat()
        ),
    }
)


@SETTINGS
@given(event=valid_events)
def test_every_well_formed_event_is_accepted_with_its_ids_kept(event):
    clean, errors = check_event(event)
    assert errors == {}
    assert clean["user_id"] == event["user_id"] and clean["item_id"] == event["item_id"]
    assert clean["timestamp"] == datetime.fromisoformat(event["timestamp"])


def test_an_event_from_the_far_future_is_rejected():
    event = {"event_id": "e", "user_id": "u", "item_id": "i", "event_type": "view",
             "timestamp": (datetime.now(UTC) + timedelta(days=2)).isoformat()}  # fmt: skip
    assert "timestamp" in check_event(event)[1]


def assert_storable(value, *, depth: int = 0) -> None:
    """What a validator accepts PostgreSQL can store: UTF-8 text without NUL, timestamps in UTC (timestamptz
    input refuses offsets beyond +-15:59), JSON no deeper than the attributes cap."""
    assert depth <= MAX_ATTRIBUTES_DEPTH + 1, "nested deeper than the cap"
    if isinstance(value, str):
        assert "\x00" not in value
        value.encode()  # a lone surrogate raises here, as in psycopg
    elif isinstance(value, datetime):
        assert value.utcoffset() == timedelta(0), value
    elif isinstance(value, dict):
        for key, child in value.items():
            assert_storable(key, depth=depth + 1)
            assert_storable(child, depth=depth + 1)
    elif isinstance(value, list | tuple):
        for child in value:
            assert_storable(child, depth=depth + 1)


@SETTINGS
@given(raw=hostile_items)
def test_an_item_the_validator_accepts_can_be_stored_and_is_not_from_the_future(raw):
    clean, errors = check_item(raw)
    assert_clean_or_errors(clean, errors)
    if clean is not None:
        assert_storable(clean)
        assert clean.get("published_at") is None or clean["published_at"] <= now_plus(
            django_settings.RECSYS_MAX_FUTURE_SKEW_SECONDS
        )


@SETTINGS
@given(raw=hostile_events)
def test_an_event_the_validator_accepts_can_be_stored_and_is_not_from_the_future(raw):
    clean, errors = check_event(raw)
    assert_clean_or_errors(clean, errors)
    if clean is not None:
        assert_storable(clean)
        assert clean["timestamp"] <= now_plus(django_settings.RECSYS_MAX_FUTURE_SKEW_SECONDS)


@SETTINGS
@given(raw=json_values | st.dictionaries(st.sampled_from(["id", "title", "price", "currency", "category_path",
       "attributes", "stock", "in_stock", "image_url", "published_at", "extra"]), json_values))  # fmt: skip
def test_the_item_validator_answers_clean_values_or_field_errors_for_any_json(raw):
    assert_clean_or_errors(*check_item(raw))
    assert_clean_or_errors(*check_item(raw, partial=True))

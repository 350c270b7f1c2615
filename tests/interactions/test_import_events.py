from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest
from django.conf import settings

from catalog.models import Item
from interactions.models import Event, UserProfile
from tests.imports import import_run

pytestmark = pytest.mark.django_db
REPO = Path(__file__).resolve().parents[2]


def run(command, path, *args, exit_code: int = 0) -> tuple[str, str]:
    return import_run(command, path, *args, exit_code=exit_code)


def event(n: int, **overrides) -> dict:
    return {
        "event_id": f"e{n}",
        "user_id": f"u{n % 3}",
        "session_id": f"s{n % 5}",
        "item_id": f"sku-{n % 4}",
        "event_type": "view",
        "timestamp": "2025-01-02T03:04:05Z",
        **overrides,
    }


def write_jsonl(path, rows) -> None:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))


def test_jsonl_events_are_stored_and_bad_lines_reported_by_number(tmp_path):
    path = tmp_path / "events.jsonl"
    write_jsonl(path, [event(1), event(2, event_type="teleport"), "[1, 2]", event(4, event_type="purchase")])
    out, err = run("import_events", path, exit_code=2)
    assert "4 lines: 2 accepted, 0 duplicates, 2 rejected." in out
    assert "line 2: rejected: event_type: Must be one of" in err
    assert "line 3: rejected: Each line must be a JSON object." in err
    assert sorted(Event.objects.values_list("event_id", flat=True)) == ["e1", "e4"]
    assert UserProfile.objects.get(external_id="u1").purchase_count == 1


def test_rerunning_an_event_import_changes_no_counts(tmp_path):
    path = tmp_path / "events.jsonl"
    write_jsonl(path, [event(n) for n in range(40)])
    run("import_events", path, "--batch-size", "9")
    counts = dict(UserProfile.objects.values_list("external_id", "event_count"))
    out, _ = run("import_events", path, "--batch-size", "9")
    assert "40 lines: 0 accepted, 40 duplicates, 0 rejected." in out
    assert Event.objects.count() == 40
    assert dict(UserProfile.objects.values_list("external_id", "event_count")) == counts


def test_csv_events_with_empty_optional_cells(tmp_path):
    path = tmp_path / "events.csv.gz"
    with gzip.open(path, "wt", newline="") as fh:
        fh.write("event_id,user_id,session_id,item_id,event_type,timestamp,value,quantity\n")
        fh.write("c1,,sess-9,sku-1,purchase,2025-01-02 03:04,12.5,2\n")
        fh.write("c2,u7,,sku-1,click,2025-01-02T03:05:00+01:00,,\n")
        fh.write("c3,u7,,sku-1,click,not a time,,\n")
    out, err = run("import_events", path, exit_code=2)
    assert "3 lines: 2 accepted, 0 duplicates, 1 rejected." in out
    assert "line 4: rejected: timestamp:" in err
    guest = Event.objects.get(event_id="c1")
    assert guest.user_id is None and guest.session_id == "sess-9"
    assert (str(guest.value), guest.quantity) == ("12.5000", 2)
    assert Event.objects.get(event_id="c2").timestamp.isoformat() == "2025-01-02T02:05:00+00:00"


def test_imported_events_for_unknown_items_are_linked_when_the_catalog_import_brings_them(tmp_path):
    events = tmp_path / "events.jsonl"
    write_jsonl(events, [event(1, item_id="late")])
    run("import_events", events)
    assert Event.objects.get().item is None
    items = tmp_path / "items.jsonl"
    write_jsonl(items, [{"id": "late", "title": "Arrives late"}])
    run("import_catalog", items)
    assert Event.objects.get().item == Item.objects.get(external_id="late")


def test_every_line_rejected_is_a_command_error(tmp_path):
    path = tmp_path / "events.jsonl"
    write_jsonl(path, [event(1, timestamp="2999-01-01T00:00:00Z")])
    _, err = run("import_events", path, exit_code=1)
    assert re.search("Every line was rejected", err), err
    assert Event.objects.count() == 0


def test_missing_file_exits_non_zero_with_a_clear_message(tmp_path):
    env = {
        **os.environ,
        "REDIS_URL": settings.REDIS_URL,
    }
    proc = subprocess.run(
        [sys.executable, "manage.py", "import_events", str(tmp_path / "missing.jsonl")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert "File not found" in proc.stderr


def _peak_memory_of_import(path) -> int:
    tracemalloc.start()
    try:
        run("import_events", path, "--batch-size", "500")
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_import_memory_does_not_grow_with_file_size(tmp_path):
    warm, small, large = tmp_path / "warm.jsonl", tmp_path / "small.jsonl", tmp_path / "large.jsonl"
    write_jsonl(warm, [event(n, event_id=f"W{n}") for n in range(500)])
    write_jsonl(small, [event(n) for n in range(1_000)])
    write_jsonl(large, [event(n, event_id=f"L{n}") for n in range(8_000)])
    run("import_events", warm)  # warm caches (imports, query compilation) before measuring
    small_peak = _peak_memory_of_import(small)
    large_peak = _peak_memory_of_import(large)
    # 8x the lines, about the same peak: only one batch is ever held in memory
    assert large_peak < small_peak * 2, (small_peak, large_peak)


def test_lines_postgres_cannot_store_are_reported_by_number_and_the_rest_imported(tmp_path):
    path = tmp_path / "events.jsonl"
    write_jsonl(
        path,
        [
            event(1),
            event(2, user_id="emoji cut \ud83d"),  # json.dumps writes the \ud83d escape
            event(3, timestamp="2024-01-01T00:00:00+16:00"),
            {**event(4), "extra": json.loads("[" * 400 + "]" * 400)},
            event(5),
        ],
    )
    out, err = run("import_events", path, exit_code=2)
    assert "5 lines: 3 accepted, 0 duplicates, 2 rejected." in out
    assert "line 2: rejected: user_id: Must not contain a lone UTF-16 surrogate" in err
    assert "line 4: rejected: extra: Unknown field." in err
    assert sorted(Event.objects.values_list("event_id", flat=True)) == ["e1", "e3", "e5"]
    assert Event.objects.get(event_id="e3").timestamp.isoformat() == "2023-12-31T08:00:00+00:00"

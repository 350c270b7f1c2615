from __future__ import annotations

import gzip
import json
import re
from io import StringIO

import pytest
from django.core.management import call_command

from catalog.models import Category, Item
from core.feeds import Feed
from tests.imports import import_run

pytestmark = pytest.mark.django_db


def run(path, *args, exit_code: int = 0) -> tuple[str, str]:
    return import_run("import_catalog", path, *args, exit_code=exit_code)


def write_jsonl(path, rows) -> None:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))


def test_jsonl_items_are_created_and_rejected_lines_reported_by_number(tmp_path):
    path = tmp_path / "items.jsonl"
    write_jsonl(
        path,
        [
            {"id": "a", "title": "Lamp", "price": "10.50", "category_path": ["Home", "Lighting"]},
            '{"id": "b", "title": ',
            {"id": "c"},
            "",
            {"id": "d", "title": "Desk", "stock": 0},
        ],
    )
    out, err = run(path, exit_code=2)
    assert "5 lines" not in out  # the blank line is not a record
    assert "4 lines: 2 created, 0 updated, 0 unchanged, 2 rejected." in out
    assert "line 2: rejected: Not valid JSON" in err
    assert "line 3: rejected: title: This field is required." in err
    # the exit status says some lines were bad (2), and the message that the rest were imported
    assert "2 of 4 lines rejected (each reported above by its line number); the other 2 were imported." in err
    assert sorted(Item.objects.values_list("external_id", flat=True)) == ["a", "d"]
    assert Item.objects.get(external_id="a").category.path == "Home > Lighting"
    assert Item.objects.get(external_id="d").in_stock is False


def test_rerunning_an_import_doubles_nothing(tmp_path):
    path = tmp_path / "items.jsonl"
    write_jsonl(path, [{"id": f"sku-{n}", "title": f"Thing {n}"} for n in range(30)])
    run(path, "--batch-size", "7")
    out, _ = run(path, "--batch-size", "7")
    assert "30 lines: 0 created, 0 updated, 30 unchanged, 0 rejected." in out
    assert Item.objects.count() == 30


def test_csv_reads_category_path_and_json_attributes_and_leaves_empty_cells_unset(tmp_path):
    path = tmp_path / "items.csv"
    path.write_text(
        "id,title,category_path,attributes,price,in_stock,description\n"
        'p1,"Phone, 128 GB",Electronics > Phones > Apple,"{""color"": ""red""}",699.00,true,"two\nlines"\n'
        "p2,Case,Electronics > Accessories,,,,\n"
        'p3,Bad,Electronics,"{not json}",1,,\n'
        "p4,Broken,Electronics,,-5,,\n"
    )
    out, err = run(path, exit_code=2)
    assert "4 lines: 2 created, 0 updated, 0 unchanged, 2 rejected." in out
    # line numbers are physical lines: p1 spans lines 2-3 because of the quoted newline
    assert "line 5: rejected: attributes:" in err
    assert "line 6: rejected: price:" in err
    phone = Item.objects.get(external_id="p1")
    assert phone.title == "Phone, 128 GB"
    assert phone.category_path == ["Electronics", "Phones", "Apple"]
    assert phone.attributes == {"color": "red"}
    assert phone.description == "two\nlines"
    case = Item.objects.get(external_id="p2")
    assert case.price is None and case.in_stock is True and case.attributes == {}
    assert Category.objects.get(path="Electronics > Phones").parent.path == "Electronics"


def test_gzipped_file_is_read_directly(tmp_path):
    path = tmp_path / "items.jsonl.gz"
    with gzip.open(path, "wt") as fh:
        fh.write(json.dumps({"id": "g1", "title": "Zipped"}) + "\n")
    out, _ = run(path)
    assert "1 created" in out
    assert Item.objects.filter(external_id="g1").exists()


def test_csv_with_an_unknown_column_rejects_its_lines_naming_the_column(tmp_path):
    path = tmp_path / "items.csv"
    path.write_text("id,title,colour\nx,Shirt,blue\n")
    _, err = run(path, exit_code=1)
    assert re.search("Every line was rejected", err), err
    assert Item.objects.count() == 0


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("items.xml", b"<items/>", "Cannot tell the format"),
        ("items.jsonl.gz", b"\x1f\x8b\x08\x00garbage-not-deflate", "not a readable gzip file"),
        ("items.jsonl", b'{"id": "x", "title": "caf\xe9"}\n', "not UTF-8"),
        ("items.csv", b"", "needs a header row"),
    ],
)
def test_unreadable_file_is_a_clear_command_error(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    _, err = run(path, exit_code=1)
    assert re.search(message, err), err
    assert Item.objects.count() == 0


def test_missing_file_is_a_clear_command_error(tmp_path):
    _, err = run(tmp_path / "nope.jsonl", exit_code=1)
    assert re.search("File not found", err), err


def test_feed_streams_instead_of_reading_the_whole_file(tmp_path):
    path = tmp_path / "big.jsonl.gz"
    with gzip.open(path, "wt", compresslevel=1) as fh:
        for n in range(50_000):
            fh.write(json.dumps({"id": f"id-{n}", "title": f"random {n * 7919 % 104729}"}) + "\n")
    with Feed(path) as feed:
        records = feed.records()
        first = next(records)
        assert (first.line, first.data["id"]) == (1, "id-0")
        # only a read-ahead buffer has been consumed, not the file
        assert feed.position() < feed.size / 4
        *_, last = records
        assert last.line == 50_000
        assert feed.position() == feed.size


def test_import_shows_a_progress_bar_over_the_file(tmp_path, capsys):
    path = tmp_path / "items.jsonl"
    write_jsonl(path, [{"id": f"p{n}", "title": "T"} for n in range(20)])
    call_command("import_catalog", str(path), "--batch-size", "5", stdout=StringIO(), stderr=StringIO())
    bar = capsys.readouterr().err
    assert "items.jsonl" in bar and "100%" in bar


@pytest.mark.parametrize("option", [["--batch-size", "0"], ["--limit", "0"], ["--limit", "-3"]])
def test_nonsense_options_are_refused(tmp_path, option):
    path = tmp_path / "items.jsonl"
    write_jsonl(path, [{"id": "a", "title": "A"}])
    _, err = run(path, *option, exit_code=1)
    assert re.search("must be at least 1", err), err
    assert Item.objects.count() == 0


def test_limit_stops_after_that_many_lines(tmp_path):
    path = tmp_path / "items.jsonl"
    write_jsonl(path, [{"id": f"i{n}", "title": "T"} for n in range(10)])
    out, _ = run(path, "--limit", "3", "--batch-size", "2")
    assert out.startswith("3 lines: 3 created")
    assert Item.objects.count() == 3


def test_lines_postgres_cannot_store_are_reported_by_number_and_the_rest_imported(tmp_path):
    deep: dict = {"leaf": 1}
    for _ in range(400):
        deep = {"a": deep}
    path = tmp_path / "items.jsonl"
    write_jsonl(
        path,
        [
            {"id": "a", "title": "Lamp"},
            {"id": "b", "title": "emoji cut \ud83d"},  # json.dumps writes the \ud83d escape
            {"id": "c", "title": "Desk", "published_at": "2024-01-01T00:00:00+16:00"},
            {"id": "d", "title": "Chair", "attributes": deep},
            {"id": "e", "title": "Rug", "published_at": "9999-12-31"},
            {"id": "f", "title": "Vase"},
        ],
    )
    out, err = run(path, exit_code=2)
    assert "6 lines: 3 created, 0 updated, 0 unchanged, 3 rejected." in out
    assert "line 2: rejected: title: Must not contain a lone UTF-16 surrogate" in err
    assert "line 4: rejected: attributes: Nested more than 32 levels deep." in err
    assert "line 5: rejected: published_at: Is " in err and "in the future" in err
    assert sorted(Item.objects.values_list("external_id", flat=True)) == ["a", "c", "f"]
    assert Item.objects.get(external_id="c").published_at.isoformat() == "2023-12-31T08:00:00+00:00"

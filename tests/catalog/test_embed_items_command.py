"""The embed_items backfill command."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from catalog.models import Item

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


def make_items(n: int) -> None:
    Item.objects.bulk_create(
        [Item(external_id=f"sku{i}", title=f"Ceramic mug with pattern {i}") for i in range(n)]
    )


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("embed_items", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_backfill_embeds_every_dirty_item_and_reports_throughput():
    make_items(70)
    output = run("--batch-size", "32")
    assert "70 items to embed" in output
    assert "embedded 70 items" in output and "items/s" in output and "peak RSS" in output
    assert not Item.objects.filter(embedding__isnull=True).exists()
    assert not Item.objects.filter(embedding_dirty=True).exists()


def test_backfill_resumes_where_an_interrupted_run_stopped():
    make_items(10)
    run()
    done = dict(Item.objects.values_list("external_id", "embedded_at"))
    Item.objects.bulk_create([Item(external_id=f"new{i}", title=f"Linen napkin {i}") for i in range(5)])
    output = run()
    assert "5 items to embed" in output and "embedded 5 items" in output
    for external_id, embedded_at in Item.objects.filter(external_id__startswith="sku").values_list(
        "external_id", "embedded_at"
    ):
        assert embedded_at == done[external_id]


def test_all_re_embeds_even_clean_items_but_skips_unchanged_text():
    make_items(3)
    run()
    output = run("--all")
    # The text and model did not change: the hash check spares the forward pass.
    assert "marked 3 items" in output and "skipped 3 unchanged" in output


def test_bad_batch_size_is_refused():
    with pytest.raises(CommandError, match="--batch-size"):
        run("--batch-size", "0")

"""`faiss_consistency`: finds what the index misses or holds wrongly, and repairs it."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from accelerator.backend import FaissBackend
from accelerator.services import faiss_consistency_check, faiss_index_build
from catalog.models import Item
from recommendations.retrieval.base import HardFilters
from tests.accelerator.conftest import clustered_vectors, items_create

pytestmark = pytest.mark.django_db


def _drift():
    """Changes made with no signal (a lost task): one new item, one re-embedded, one repriced, one
    deactivated."""
    items = list(Item.objects.order_by("pk")[:3])
    new = items_create(1, seed=5, start=50_000)[0]
    Item.objects.filter(pk=items[0].pk).update(embedding=clustered_vectors(1, seed=6)[0])
    Item.objects.filter(pk=items[1].pk).update(price=777)
    Item.objects.filter(pk=items[2].pk).update(is_active=False)
    return new.pk, items[0].pk, items[1].pk, items[2].pk


def test_a_fresh_index_is_consistent(faiss_settings):
    items_create(100)
    faiss_index_build()
    report = faiss_consistency_check()
    assert report.consistent and report.checked == 100


def test_missing_stale_and_extra_items_are_reported_and_repaired(faiss_settings):
    items_create(200)
    faiss_index_build()
    backend = FaissBackend()
    new, reembedded, repriced, deactivated = _drift()

    report = faiss_consistency_check()
    assert (report.missing, sorted(report.stale), report.extra) == (
        [new],
        sorted([reembedded, repriced]),
        [deactivated],
    )

    repaired = faiss_consistency_check(repair=True)
    assert repaired.repaired
    assert faiss_consistency_check().consistent
    q = clustered_vectors(1, seed=6)[0]
    assert backend.search(vector=q, k=1, filters=HardFilters())[0].item_pk == reembedded
    everything = [
        c.item_pk for c in backend.search(vector=q, k=500, filters=HardFilters(in_stock_only=False))
    ]
    assert new in everything and deactivated not in everything


def test_the_command_fails_on_drift_and_succeeds_with_repair(faiss_settings, capsys):
    items_create(50)
    faiss_index_build()
    _drift()
    with pytest.raises(CommandError, match="inconsistent"):
        call_command("faiss_consistency")
    out = capsys.readouterr().out
    assert "missing: 1" in out and "stale: 2" in out and "extra: 1" in out
    call_command("faiss_consistency", "--repair")
    assert "Repaired" in capsys.readouterr().out
    call_command("faiss_consistency")
    assert "consistent" in capsys.readouterr().out


def test_the_command_explains_when_there_is_no_index(faiss_settings):
    with pytest.raises(CommandError, match="build_faiss_index"):
        call_command("faiss_consistency")

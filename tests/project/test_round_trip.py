"""core.round_trip: several reads in one round trip, each answer from its own statement."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core.round_trip import Read, reads_run

pytestmark = pytest.mark.django_db


def test_each_read_gets_its_own_rows_from_one_round_trip():
    reads = [
        Read("SELECT %(n)s::int * 2", {"n": 21}, lambda rows: rows[0][0]),
        Read(None, {}, lambda rows: "nothing to read"),
        Read(
            "SELECT current_setting('hnsw.ef_search')",
            {},
            lambda rows: rows[0][0],
            before=("SET LOCAL hnsw.ef_search = 77",),
            after=("SET LOCAL hnsw.ef_search TO DEFAULT",),
        ),
        Read("SELECT x FROM generate_series(1, %(n)s) x", {"n": 3}, lambda rows: [r[0] for r in rows]),
    ]
    with CaptureQueriesContext(connection) as queries:
        answers = reads_run(reads)
    assert answers == [42, "nothing to read", "77", [1, 2, 3]]
    assert len(queries.captured_queries) == 1


def test_nothing_to_read_costs_no_round_trip():
    with CaptureQueriesContext(connection) as queries:
        assert reads_run([Read(None, {}, lambda rows: rows)]) == [[]]
    assert not queries.captured_queries

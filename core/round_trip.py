"""Several reads in one round trip: each read is a statement and the parser of its rows (`Read`); the
statements are bound client-side (as Django's psycopg backend binds every query) and sent as one
simple-protocol message, which Postgres runs as one implicit transaction, then each result set goes to its
parser. On a loaded 2-core box the round trips of a request cost more than most of its small queries
(issue 13's ranked path read its candidate sources in nine; bench/ranked_latency.py).

Reads go to `read_connection()` (a replica inside `serving_reads()`, else the primary), counted as one
query by Django."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from core.replicas import read_connection


@dataclass(frozen=True)
class Read:
    """One read: `sql` with its `params` (None: nothing to read, `parse([])` is the answer), and what
    turns its rows into the answer. `before` / `after`: statements around it in the same transaction
    (SET LOCAL ... and their resets), which return no rows."""

    sql: str | None
    params: dict[str, Any]
    parse: Callable[[list[tuple]], Any]
    before: tuple[str, ...] = field(default=())
    after: tuple[str, ...] = field(default=())


def reads_run(reads: Sequence[Read]) -> list[Any]:
    """Each read's answer, in order, from one round trip (none when nothing is to be read). The `before`
    statements of every read run first and their `after` statements last, so a SET LOCAL holds for every
    statement of the message: give reads that need different settings their own call."""
    todo = [r for r in reads if r.sql is not None]
    results: list[list[tuple]] = []
    if todo:
        connection = read_connection()
        before = list(dict.fromkeys(s for r in todo for s in r.before))
        after = list(dict.fromkeys(s for r in todo for s in r.after))
        statements = [connection.ops.compose_sql(r.sql, r.params) for r in todo]
        with connection.cursor() as cur:
            cur.execute(";\n".join([*before, *statements, *after]))
            while True:
                if cur.description is not None:
                    results.append(cur.fetchall())
                if not cur.nextset():
                    break
        if len(results) != len(todo):
            raise RuntimeError(f"{len(todo)} reads sent, {len(results)} result sets back")
    answers = iter(results)
    return [r.parse(next(answers)) if r.sql is not None else r.parse([]) for r in reads]

"""What a vector backend needs from the catalog, as part of retrieval's interface: a backend outside
recommendations (the FAISS accelerator) reaches the catalog only through this module, which delegates to
catalog's public modules (DESIGN.md section 2).

- `embedding_model_name()`: the current embedding model; an index built from another model's vectors is
  stale.
- The item rows an index holds, `(pk, vector, in_stock, stock, price, category_path)` in pk order, read
  through the raw psycopg connection with a binary cursor (parsing pgvector's text format costs about 20x
  more than unpacking its binary one, which matters at a million rows); a vector comes back in pgvector's
  binary format. A content index holds the items that are active and have a vector of the current model.
- `item_vectors_changed`: catalog's signal, sent after commit with `item_pks` when items' vectors,
  availability or filterable fields changed.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import psycopg
from django.db import connection, transaction

from catalog.embedding import current_model_name
from catalog.selectors import ITEM_TABLE
from catalog.signals import item_vectors_changed

__all__ = [
    "embedding_model_name",
    "item_vector_rows_for_pks",
    "item_vector_rows_stream",
    "item_vectors_changed",
    "model_item_vector_rows",
]

_COLUMNS = "id, embedding, in_stock, stock, price, category_path"
_CONTENT_WHERE = "is_active AND embedding IS NOT NULL AND embedding_model = %s"


def embedding_model_name() -> str:
    """The name of the embedding model the items' content vectors are computed with now."""
    return current_model_name()


def item_vector_rows_stream(*, batch_size: int) -> Iterator[list[tuple]]:
    """Every item a content index holds, in batches of `batch_size` rows. One statement, so one
    consistent snapshot of the table. Runs inside a transaction (a server-side cursor needs one)."""
    with transaction.atomic():
        connection.ensure_connection()
        with connection.connection.cursor(name="accelerator_item_rows", binary=True) as cur:
            cur.execute(
                f"SELECT {_COLUMNS} FROM {ITEM_TABLE} WHERE {_CONTENT_WHERE} ORDER BY id",  # noqa: S608
                [current_model_name()],
            )
            while rows := cur.fetchmany(batch_size):
                yield rows


def item_vector_rows_for_pks(*, item_pks: Sequence[int]) -> list[tuple]:
    """The rows of these items that a content index holds (the others are absent: deactivated, not
    embedded yet, or embedded with another model)."""
    connection.ensure_connection()
    # Django's cursors bind client-side, which cannot return binary results; a plain psycopg cursor can.
    with psycopg.Cursor(connection.connection) as cur:
        cur.execute(
            f"SELECT {_COLUMNS} FROM {ITEM_TABLE} "  # noqa: S608 - no user input
            f"WHERE id = ANY(%s) AND {_CONTENT_WHERE} ORDER BY id",
            [list(map(int, item_pks)), current_model_name()],
            binary=True,
        )
        return cur.fetchall()


def model_item_vector_rows(*, table: str, version_id: int) -> list[tuple]:
    """The item vectors of one two-tower version (`table`: retrieval's MODEL_VECTOR_TABLE) of the active
    items, with the items' filter fields. One query, binary."""
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cur:
        cur.execute(
            f"SELECT i.id, v.embedding, i.in_stock, i.stock, i.price, i.category_path "  # noqa: S608
            f"FROM {table} v JOIN {ITEM_TABLE} i ON i.id = v.item_id "
            "WHERE v.version_id = %s AND i.is_active ORDER BY i.id",
            [int(version_id)],
            binary=True,
        )
        return cur.fetchall()

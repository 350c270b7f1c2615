"""Signals other apps listen to. catalog imports nothing from them (DESIGN.md §2: imports point one way)."""

from django.dispatch import Signal

# Sent after commit with `item_pks: list[int]` when items' vectors, availability or filterable fields
# (active, stock, price, category) changed: new vectors written, items deactivated or updated. Vector
# backends that keep their own index (FAISS) bring it up to date; pgvector reads the table and ignores it.
item_vectors_changed = Signal()

# Sent by `item_upsert` inside its transaction with `external_ids: list[str]`, the items it just created.
# interactions links the events that arrived before their item (and were held by its raw id) and returns
# how many it linked; the upsert reports the sum.
items_created = Signal()

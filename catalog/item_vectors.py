"""Writes item vectors: claim dirty items, embed their text in one forward pass, store the vectors.

The claim is a lease (`embedding_claimed_at`), not a lock held across the forward pass: a busy catalog
never waits on the model, and a worker that dies mid-batch leaves its items dirty, to be taken again by
the next task or the sweep once the lease runs out. Writing is conditional on the content hash read at
claim time, so an item changed during the forward pass stays dirty and is embedded again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np
from django.db import connection, transaction

from catalog.embedding import check_dimension, current_model_name, get_embedder
from catalog.models import Item
from catalog.signals import item_vectors_changed

logger = logging.getLogger(__name__)

# Items per claim for the online path: one forward pass of <= 64 short texts takes ~0.4-0.8 s on the
# 2-core box (bench/embedding_throughput.py), which keeps a new item within the 2 s freshness target
# even when a backfill left thousands of items dirty.
ONLINE_BATCH_SIZE = 64
# Items per claim for the sweep and the backfill: 256 texts ~ 3 s per round; bigger rounds do not embed
# faster (sentence-transformers batches by 64 inside) and only hold more leases at once.
BACKFILL_BATCH_SIZE = 256
# A claim older than this is considered abandoned (its worker died). Far above one round's duration.
CLAIM_LEASE = timedelta(minutes=5)

_CLAIM_SQL = """
UPDATE catalog_item SET embedding_claimed_at = now()
WHERE id IN (
    SELECT id FROM catalog_item
    WHERE embedding_dirty
      AND (embedding_claimed_at IS NULL OR embedding_claimed_at < now() - %(lease)s)
      {only}
    ORDER BY (id = ANY(%(first)s)) DESC, id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
RETURNING id
"""

# `content_hash = read_hash` guards against a change made while we embedded: then the row keeps its
# newer hash and stays dirty. The vector written is still the best we have until the next round.
_WRITE_SQL = """
UPDATE catalog_item AS i SET
    embedding = v.embedding::vector,
    embedded_hash = v.text_hash,
    content_hash = CASE WHEN i.content_hash = v.read_hash THEN v.text_hash ELSE i.content_hash END,
    embedding_model = %s,
    embedded_at = now(),
    embedding_dirty = (i.content_hash <> v.read_hash),
    embedding_claimed_at = NULL
FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::text[]) AS v(id, read_hash, text_hash, embedding)
WHERE i.id = v.id
"""

_SKIP_SQL = """
UPDATE catalog_item AS i SET embedding_dirty = false, embedding_claimed_at = NULL
FROM unnest(%s::bigint[], %s::text[]) AS v(id, read_hash)
WHERE i.id = v.id AND i.content_hash = v.read_hash
"""


@dataclass
class EmbedResult:
    claimed: int = 0
    embedded: int = 0
    # claimed, but the text hash and the model matched the stored vector: no forward pass
    skipped: int = 0
    item_pks: list[int] = field(default_factory=list)


def vector_to_text(vector: np.ndarray) -> str:
    return "[" + ",".join(repr(float(x)) for x in vector) + "]"


def items_embed(
    *, item_pks: list[int] | None = None, only_these: bool = False, limit: int = ONLINE_BATCH_SIZE
) -> EmbedResult:
    """Embed one round of up to `limit` dirty items: `item_pks` first, then (unless `only_these`) any
    other dirty item, so that items written by concurrent requests share one forward pass.

    Runs in autocommit, deliberately not in one transaction: the claim commits at once (other workers
    skip the claimed rows), the forward pass holds no lock, and the write commits per round."""
    embedder = get_embedder()
    check_dimension(embedder)
    model_name = embedder.model_name
    first = list(item_pks or [])
    only = "AND id = ANY(%(first)s)" if only_these else ""
    with connection.cursor() as cur:
        # psycopg adapts a timedelta to an interval; django-stubs' parameter type leaves it out
        params: dict[str, Any] = {"lease": CLAIM_LEASE, "first": first, "limit": limit}
        cur.execute(_CLAIM_SQL.format(only=only), params)
        claimed = [row[0] for row in cur.fetchall()]
    result = EmbedResult(claimed=len(claimed))
    if not claimed:
        return result
    try:
        items = list(
            Item.objects.filter(pk__in=claimed).only(
                "id",
                "title",
                "description",
                "category_path",
                "brand",
                "condition",
                "attributes",
                "content_hash",
                "embedded_hash",
                "embedding_model",
            )
        )
        texts, to_embed, unchanged = [], [], []
        for item in items:
            text = item.embedding_text()
            text_hash = item.compute_content_hash()
            # Hash-based skipping: the stored vector was computed from this very text by this model.
            if item.embedded_hash == text_hash and item.embedding_model == model_name:
                unchanged.append(item)
            else:
                texts.append(text)
                to_embed.append((item, text_hash))
        vectors = embedder.encode(texts) if texts else None
        with connection.cursor() as cur:
            if to_embed and vectors is not None:  # to_embed is non-empty exactly when texts is
                cur.execute(
                    _WRITE_SQL,
                    [
                        model_name,
                        [item.pk for item, _h in to_embed],
                        [item.content_hash for item, _h in to_embed],
                        [text_hash for _i, text_hash in to_embed],
                        [vector_to_text(v) for v in vectors],
                    ],
                )
            if unchanged:
                cur.execute(_SKIP_SQL, [[i.pk for i in unchanged], [i.content_hash for i in unchanged]])
    except BaseException:
        # Give the items back at once rather than after the lease (a retry or the sweep takes them).
        Item.objects.filter(pk__in=claimed).update(embedding_claimed_at=None)
        raise
    result.embedded = len(to_embed)
    result.skipped = len(unchanged)
    result.item_pks = [item.pk for item, _h in to_embed]
    if result.item_pks:
        items_vectors_changed_send(item_pks=result.item_pks)
    return result


def items_vectors_changed_send(*, item_pks: list[int]) -> None:
    """Tell listeners (the FAISS index, pending user events) after commit. A failing receiver is logged
    and never undoes the write that triggered it."""
    if not item_pks:
        return
    pks = list(item_pks)

    def send() -> None:
        for receiver, response in item_vectors_changed.send_robust(sender=Item, item_pks=pks):
            if isinstance(response, Exception):
                logger.error("item_vectors_changed receiver %r failed: %r", receiver, response)

    transaction.on_commit(send)


def items_mark_stale_model() -> int:
    """Mark dirty every item whose vector comes from another model than the current one (a model change
    re-embeds the whole catalog, through the same sweep). Returns how many were marked."""
    model_name = current_model_name()
    return (
        Item.objects.filter(embedding_dirty=False)
        .exclude(embedding_model=model_name)
        .update(embedding_dirty=True)
    )


def items_embed_pending_count() -> int:
    return Item.objects.filter(embedding_dirty=True).count()

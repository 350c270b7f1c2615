"""Backfill item vectors: embed every dirty item (or, with --all, every item) in batches.

Resumable: each batch commits on its own and only dirty items are taken, so an interrupted run simply
continues where it stopped. Memory stays bounded: one batch of texts and vectors is held at a time.
"""

from __future__ import annotations

import resource
import time

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from catalog.embedding import get_embedder
from catalog.item_vectors import (
    BACKFILL_BATCH_SIZE,
    items_embed,
    items_embed_pending_count,
    items_mark_stale_model,
)
from catalog.models import Item


class Command(BaseCommand):
    help = "Embed items whose vector is missing or stale (resumable; progress and throughput shown)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--all", action="store_true", help="Re-embed every item, not only the dirty ones."
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=BACKFILL_BATCH_SIZE,
            help=f"Items per round (default {BACKFILL_BATCH_SIZE}).",
        )

    def handle(self, *args, **options):
        batch_size = options["batch_size"]
        if not 1 <= batch_size <= 10_000:
            raise CommandError("--batch-size must be between 1 and 10000.")
        embedder = get_embedder()  # load before timing: the model load is not throughput
        if options["all"]:
            marked = Item.objects.filter(embedding_dirty=False).update(embedding_dirty=True)
            self.stdout.write(f"marked {marked} items for re-embedding")
        stale = items_mark_stale_model()
        if stale:
            self.stdout.write(f"{stale} items have vectors of another model: re-embedding them")
        pending = items_embed_pending_count()
        self.stdout.write(f"{pending} items to embed with {embedder.model_name} (batch {batch_size})")
        embedded = skipped = 0
        started = time.monotonic()
        with tqdm(total=pending, unit="item", disable=None) as bar:
            while True:
                result = items_embed(limit=batch_size)
                if result.claimed == 0:
                    break
                embedded += result.embedded
                skipped += result.skipped
                bar.update(result.claimed)
        elapsed = time.monotonic() - started
        rate = embedded / elapsed if elapsed > 0 else 0.0
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        left = items_embed_pending_count()
        self.stdout.write(
            f"embedded {embedded} items, skipped {skipped} unchanged, in {elapsed:.1f} s "
            f"({rate:.1f} items/s); peak RSS {peak_mb:.0f} MB; {left} still dirty"
            + (" (held by a running worker, or changed meanwhile)" if left else "")
        )

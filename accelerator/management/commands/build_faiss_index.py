"""`python manage.py build_faiss_index`: build the FAISS index from Postgres and publish it."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from accelerator.services import faiss_index_build


class Command(BaseCommand):
    help = "Build the FAISS index from the item vectors in Postgres and publish it atomically."

    def add_arguments(self, parser):
        parser.add_argument(
            "--wait", action="store_true", help="Wait for a build already running instead of skipping."
        )
        parser.add_argument("--threads", type=int, default=None, help="OpenMP threads for the build.")
        parser.add_argument(
            "--index-type",
            choices=["flat", "hnsw"],
            default=None,
            help="Override the choice by catalog size (flat up to 10,000 items, HNSW above).",
        )

    def handle(self, *args, wait: bool, threads: int | None, index_type: str | None, **options):
        if threads is not None and threads < 1:
            raise CommandError("--threads must be at least 1.")
        result = faiss_index_build(wait=wait, progress=True, threads=threads, index_type=index_type)
        if not result.built:
            self.stdout.write(f"Not built: {result.reason}.")
            return
        m = result.manifest
        timings = ", ".join(f"{k} {v:.1f}s" for k, v in result.timings.items())
        self.stdout.write(
            self.style.SUCCESS(
                f"Published index {m.version}: {m.count} items, {m.index_type} {m.params or ''}, "
                f"model {m.embedding_model} ({timings})."
            )
        )

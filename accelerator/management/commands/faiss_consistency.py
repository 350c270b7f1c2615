"""`python manage.py faiss_consistency [--repair]`: compare the FAISS index with the database."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from accelerator.services import faiss_consistency_check

SHOWN = 20


class Command(BaseCommand):
    help = (
        "Report items missing from the FAISS index, stale in it (vector or filter fields changed) or still in "
        "it though deactivated. Exits 1 when inconsistent, unless --repair fixed it."
    )

    def add_arguments(self, parser):
        parser.add_argument("--repair", action="store_true", help="Write updates for every item found wrong.")

    def handle(self, *args, repair: bool, **options):
        report = faiss_consistency_check(repair=repair)
        if report is None:
            raise CommandError("No FAISS index has been built yet: run `python manage.py build_faiss_index`.")
        self.stdout.write(f"Checked {report.checked} items against the index.")
        for label, pks in (("missing", report.missing), ("stale", report.stale), ("extra", report.extra)):
            shown = ", ".join(map(str, pks[:SHOWN])) + (" ..." if len(pks) > SHOWN else "")
            self.stdout.write(f"{label}: {len(pks)}" + (f" (item pks: {shown})" if pks else ""))
        if report.consistent:
            self.stdout.write(self.style.SUCCESS("The index is consistent with the database."))
        elif report.repaired:
            self.stdout.write(
                self.style.SUCCESS("Repaired: updates written; serving processes apply them within a second.")
            )
        else:
            raise CommandError("The index is inconsistent; run with --repair to fix it.")

"""The default profile's `candidate_k` goes from 500 to 100 (issue 15, item 5): the smallest value that keeps
the served NDCG@10 within 1% of k=500's, chosen by the offline evaluation on validation slices
(`bench/candidate_k.py`; docs/serving-speed.md, "candidate_k and ef_search, chosen by evaluation").

Changes the `default` profile's candidate_k only where it still holds the old default: a value a
merchandiser chose is kept. A changed row gets a new `version` (logged with each answer); the candidate
cache's key holds candidate_k, so the users' pre-computed lists are recomputed. The model's field default
(used without a `default` row, and for a new profile) changes in the next migration."""

from django.db import migrations
from django.db.models import F

OLD = 500
NEW = 100


def _move(apps, source: int, target: int) -> None:
    RerankProfile = apps.get_model("recommendations", "RerankProfile")
    RerankProfile.objects.filter(surface="default", candidate_k=source).update(
        candidate_k=target, version=F("version") + 1
    )


def forwards(apps, schema_editor):
    _move(apps, OLD, NEW)


def backwards(apps, schema_editor):
    _move(apps, NEW, OLD)


class Migration(migrations.Migration):
    dependencies = [
        ("recommendations", "0011_served_list_latency"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]

"""Existing promotions keep their meaning: one with surfaces named applies to those only; one with none
was "all surfaces" and stays so (the schema default), which from now on leaves semantic search out."""

from django.db import migrations


def forwards(apps, schema_editor):
    Promotion = apps.get_model("catalog", "Promotion")
    Promotion.objects.exclude(surfaces=[]).update(surface_scope="named")


def backwards(apps, schema_editor):
    # The old model had no scope: empty surfaces meant all, named meant those. Nothing to undo.
    pass


class Migration(migrations.Migration):
    dependencies = [("catalog", "0006_promotion_scope_promotion_surfaces_explicit")]

    operations = [migrations.RunPython(forwards, backwards)]

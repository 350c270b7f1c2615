from django.db import migrations


class Migration(migrations.Migration):
    """The sequence that numbers delta segments. It lives in Postgres (not Redis) because the order of
    segments decides which state of an item wins, and Redis holds nothing that cannot be rebuilt."""

    initial = True
    dependencies = []

    operations = [
        migrations.RunSQL(
            "CREATE SEQUENCE IF NOT EXISTS accelerator_delta_seq",
            reverse_sql="DROP SEQUENCE IF EXISTS accelerator_delta_seq",
        )
    ]

"""Fewer indexes to maintain on every event insert (10 -> 8 on the events table).

- The item foreign key's own index goes: `event_item_time` (item_id, timestamp) leads with the same column.
- The `varchar_pattern_ops` ("_like") indexes Django adds beside a unique CharField's unique index, on
  `Event.event_id` and `UserProfile.external_id`, serve only LIKE 'prefix%' queries, and no code runs one;
  the unique indexes stay. Their names are Django's own (a hash of table and column, the same everywhere).
"""

import django.db.models.deletion
from django.db import migrations, models

LIKE_INDEXES = [
    ("interactions_event_event_id_390a4ec4_like", "interactions_event", "event_id"),
    ("interactions_userprofile_external_id_23168cb1_like", "interactions_userprofile", "external_id"),
]


class Migration(migrations.Migration):
    dependencies = [
        ("interactions", "0002_user_vector_sums"),
    ]

    operations = [
        migrations.AlterField(
            model_name="event",
            name="item",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="events",
                to="catalog.item",
            ),
        ),
        *[
            migrations.RunSQL(
                f"DROP INDEX IF EXISTS {name}",
                reverse_sql=f"CREATE INDEX IF NOT EXISTS {name} ON {table} ({column} varchar_pattern_ops)",
            )
            for name, table, column in LIKE_INDEXES
        ],
    ]

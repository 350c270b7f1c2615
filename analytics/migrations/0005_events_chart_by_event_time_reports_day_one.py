"""Data migration: the admin index's "Events received" chart counts events on the day they happened (their
own `timestamp`), not the day they reached us: an import of 90 days of history is 90 days on the chart, not
one bar today. Reversible."""

from django.db import migrations


def chart_by_timestamp(apps, schema_editor):
    DashboardStats = apps.get_model("admin_tools_stats", "DashboardStats")
    DashboardStats.objects.filter(graph_key="recsys_events").update(
        date_field_name="timestamp", graph_title="Events (by when they happened)"
    )


def chart_by_received_at(apps, schema_editor):
    DashboardStats = apps.get_model("admin_tools_stats", "DashboardStats")
    DashboardStats.objects.filter(graph_key="recsys_events").update(
        date_field_name="received_at", graph_title="Events received"
    )


class Migration(migrations.Migration):
    dependencies = [("analytics", "0004_dead_letter")]

    operations = [migrations.RunPython(chart_by_timestamp, chart_by_received_at)]

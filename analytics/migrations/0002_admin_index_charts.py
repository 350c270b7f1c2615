"""Data migration: the admin-index charts (django-admin-charts) for the feedback loop. Reversible."""

from django.db import migrations

CHARTS = [
    {
        "graph_key": "recsys_served_lists",
        "graph_title": "Recommendation lists served",
        "model_app_name": "recommendations",
        "model_name": "ServedList",
        "date_field_name": "created_at",
        # its primary key is recommendation_id (the package counts "id" by default)
        "operation_field_name": "recommendation_id",
        "type_operation_field_name": "Count",
    },
    {
        "graph_key": "recsys_attributed_clicks",
        "graph_title": "Clicks attributed to recommendations",
        "model_app_name": "analytics",
        "model_name": "Attribution",
        "date_field_name": "occurred_at",
        "queryset_modifiers": [{"filter": {"kind": "click", "list_known": True}}],
    },
    {
        "graph_key": "recsys_conversions",
        "graph_title": "Conversions from recommendations",
        "model_app_name": "analytics",
        "model_name": "Attribution",
        "date_field_name": "occurred_at",
        "queryset_modifiers": [{"filter": {"kind": "conversion"}}],
    },
    {
        "graph_key": "recsys_events",
        "graph_title": "Events received",
        "model_app_name": "interactions",
        "model_name": "Event",
        "date_field_name": "received_at",
    },
]


def charts_create(apps, schema_editor):
    DashboardStats = apps.get_model("admin_tools_stats", "DashboardStats")
    for chart in CHARTS:
        DashboardStats.objects.update_or_create(
            graph_key=chart["graph_key"],
            defaults={**chart, "default_chart_type": "discreteBarChart", "default_time_period": 31,
                      "default_time_scale": "days", "is_visible": True},
        )


def charts_delete(apps, schema_editor):
    DashboardStats = apps.get_model("admin_tools_stats", "DashboardStats")
    DashboardStats.objects.filter(graph_key__in=[c["graph_key"] for c in CHARTS]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("analytics", "0001_initial"),
        ("admin_tools_stats", "0024_alter_cachedvalue_operation_and_more"),
    ]

    operations = [migrations.RunPython(charts_create, charts_delete)]

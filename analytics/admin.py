from django.contrib import admin

from analytics.models import Attribution, DailyMetric, EvaluationRun


@admin.register(EvaluationRun)
class EvaluationRunAdmin(admin.ModelAdmin):
    list_display = ["id", "protocol", "label", "dataset_fingerprint", "duration_seconds", "created_at"]
    list_filter = ["protocol"]
    search_fields = ["label", "dataset_fingerprint"]
    readonly_fields = [f.name for f in EvaluationRun._meta.fields]


@admin.register(DailyMetric)
class DailyMetricAdmin(admin.ModelAdmin):
    list_display = [
        "day",
        "surface",
        "scenario",
        "impressions",
        "clicks",
        "conversions",
        "revenue",
        "coverage",
    ]
    list_filter = ["surface", "scenario"]
    date_hierarchy = "day"
    readonly_fields = [f.name for f in DailyMetric._meta.fields]


@admin.register(Attribution)
class AttributionAdmin(admin.ModelAdmin):
    list_display = [
        "occurred_at",
        "kind",
        "recommendation_id",
        "list_known",
        "surface",
        "scenario",
        "position",
    ]
    list_filter = ["kind", "list_known", "surface"]
    search_fields = ["recommendation_id"]
    raw_id_fields = ["event", "source_event", "item"]
    readonly_fields = [f.name for f in Attribution._meta.fields]

from django.contrib import admin, messages

from analytics.deadletters import dead_letter_retry
from analytics.models import Attribution, DailyMetric, DeadLetter, EvaluationRun


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


@admin.register(DeadLetter)
class DeadLetterAdmin(admin.ModelAdmin):
    """Rows the sweeps could not process, with the error; read-only but for the retry action."""

    list_display = ["sweep", "key", "short_error", "attempts", "resolved", "created_at", "updated_at"]
    list_filter = ["sweep", "resolved"]
    search_fields = ["key", "error"]
    readonly_fields = [f.name for f in DeadLetter._meta.fields]
    actions = ["retry"]

    @admin.display(description="error")
    def short_error(self, obj: DeadLetter) -> str:
        return obj.error if len(obj.error) <= 120 else obj.error[:119] + "…"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_retry_permission(self, request) -> bool:
        return request.user.has_perm("analytics.change_deadletter")

    @admin.action(description="Retry the selected rows now", permissions=["retry"])
    def retry(self, request, queryset) -> None:
        results = [dead_letter_retry(dead_letter=letter) for letter in queryset.filter(resolved=False)]
        self.message_user(
            request,
            f"{sum(results)} processed and resolved, {len(results) - sum(results)} failed again "
            "(see their errors).",
            messages.SUCCESS if all(results) else messages.WARNING,
        )

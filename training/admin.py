"""Admin for the two-tower versions: each training run with its gate metrics and decision (promoted or
rejected, and why), read-only; one action re-activates a version (the same as `rollback_model --to ID`)."""

from __future__ import annotations

import json

from django.contrib import admin, messages
from django.utils.html import format_html

from recommendations.models import ModelVersion
from training.two_tower import registry


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = [
        "version",
        "status",
        "is_active",
        "gate",
        "candidate",
        "reference_label",
        "events",
        "training_time",
        "created_at",
    ]
    list_filter = ["status", "is_active"]
    ordering = ["-created_at"]
    actions = ["activate"]
    readonly_fields = [f.name for f in ModelVersion._meta.fields] + ["metrics_table", "training_history"]
    exclude = ["metrics"]

    def has_add_permission(self, request) -> bool:
        return False  # versions come from training runs (train_model, the beat job)

    @admin.display(description="version", ordering="pk")
    def version(self, obj: ModelVersion) -> str:
        return obj.name

    @admin.display(description="gate")
    def gate(self, obj: ModelVersion) -> str:
        return f"{obj.gate_metric} ({obj.gate_protocol})" if obj.gate_metric else "-"

    @admin.display(description="candidate", ordering="candidate_score")
    def candidate(self, obj: ModelVersion) -> str:
        return "-" if obj.candidate_score is None else f"{obj.candidate_score:.4f}"

    @admin.display(description="compared to")
    def reference_label(self, obj: ModelVersion) -> str:
        if obj.reference_score is None:
            return "-"
        return f"{obj.reference_score:.4f} ({obj.reference})"

    @admin.display(description="training")
    def training_time(self, obj: ModelVersion) -> str:
        return "-" if obj.training_seconds is None else f"{obj.training_seconds:.0f} s"

    @admin.display(description="gate evaluation (every method of the same run)")
    def metrics_table(self, obj: ModelVersion) -> str:
        evaluation = (obj.metrics or {}).get("evaluation") or {}
        if not evaluation:
            return "-"
        columns = [c for c in next(iter(evaluation.values())) if c.startswith(("ndcg@", "recall@"))]
        head = "".join(format_html("<th>{}</th>", c) for c in columns)
        rows = "".join(
            format_html("<tr><td>{}</td>{}</tr>", method, _cells(values, columns))
            for method, values in evaluation.items()
        )
        return format_html("<table><tr><th>method</th>{}</tr>{}</table>", _safe(head), _safe(rows))

    @admin.display(description="training history (validation slice, per epoch)")
    def training_history(self, obj: ModelVersion) -> str:
        history = (obj.metrics or {}).get("training") or []
        return format_html("<pre>{}</pre>", "\n".join(json.dumps(h) for h in history) or "-")

    @admin.action(description="Activate the selected version (roll back / forward to it)")
    def activate(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one version.", level=messages.ERROR)
            return
        try:
            version = registry.model_rollback(to_version_id=queryset.get().pk)
        except ValueError as exc:
            self.message_user(request, str(exc), level=messages.ERROR)
            return
        self.message_user(request, f"{version.name} is now active.")


def _cells(values: dict, columns: list[str]) -> str:
    from django.utils.safestring import mark_safe

    return mark_safe(  # noqa: S308 - every cell is built with format_html
        "".join(
            format_html("<td>{}</td>", "-" if values.get(c) is None else f"{values[c]:.4f}") for c in columns
        )
    )


def _safe(html: str) -> str:
    from django.utils.safestring import mark_safe

    return mark_safe(html)  # noqa: S308 - joined format_html fragments

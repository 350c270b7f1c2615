"""Admin of A/B experiments: an experiment with its arms inline, checked before it saves (two or more
arms, one control, shares summing to 100, known candidate sources, one running experiment per surface).
Every change is audited like the other merchandising settings. The report is /reports/experiments."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.urls import reverse
from django.utils.html import format_html

from recommendations import selectors, services
from recommendations.audited_admin import AuditedAdmin
from recommendations.models import Experiment, ExperimentArm, ExperimentState, ModelVersion
from recommendations.sources import SOURCES


class ExperimentArmForm(forms.ModelForm):
    class Meta:
        model = ExperimentArm
        fields = ["name", "is_control", "traffic_percent", "profile", "model_version", "disabled_sources"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "model_version" in self.fields:
            self.fields["model_version"].queryset = ModelVersion.objects.exclude(artifact_path="")

    def clean_name(self) -> str:
        name = self.cleaned_data["name"]
        before = self.instance
        if (
            before.pk
            and name != before.name
            and selectors.experiment_arm_served(experiment_id=before.experiment_id, variant=before.name)
        ):
            # the report groups lists by the arm's name: the renamed arm would start from nothing, and
            # its lists would show under the old name as an arm of 0% traffic
            raise ValidationError(
                f"Arm {before.name!r} has served lists, which the report counts under that name; keep the "
                "name (or stop this experiment and start a new one)."
            )
        return name

    def clean_disabled_sources(self) -> list[str]:
        names = [n.strip() for n in self.cleaned_data.get("disabled_sources") or [] if n.strip()]
        unknown = [n for n in names if n not in SOURCES]
        if unknown:
            raise ValidationError(
                f"Unknown candidate source {', '.join(unknown)}; one of {', '.join(sorted(SOURCES))}."
            )
        return names


class ExperimentArmFormSet(forms.BaseInlineFormSet):
    def clean(self) -> None:
        super().clean()
        if any(self.errors):
            return
        arms = [f.cleaned_data for f in self.forms if f.cleaned_data and not f.cleaned_data.get("DELETE")]
        if len(arms) < 2:
            raise ValidationError("An experiment needs at least two arms (a control and a variant).")
        controls = sum(1 for a in arms if a.get("is_control"))
        if controls != 1:
            raise ValidationError(f"Exactly one arm is the control (found {controls}).")
        total = sum(a.get("traffic_percent") or 0 for a in arms)
        if total != 100:
            raise ValidationError(f"The arms' traffic shares must sum to 100% (they sum to {total}%).")
        names = [a.get("name") for a in arms]
        if len(set(names)) != len(names):
            raise ValidationError("Each arm needs its own name.")


class ExperimentArmInline(admin.TabularInline):
    model = ExperimentArm
    form = ExperimentArmForm
    formset = ExperimentArmFormSet
    extra = 0
    min_num = 2


class ExperimentForm(forms.ModelForm):
    class Meta:
        model = Experiment
        fields = ["name", "description", "state", "surfaces", "starts_at", "ends_at"]

    def clean_surfaces(self) -> list[str]:
        return sorted({s.strip() for s in self.cleaned_data.get("surfaces") or [] if s.strip()})

    def clean(self):
        data = super().clean()
        starts, ends = data.get("starts_at"), data.get("ends_at")
        if starts and ends and ends <= starts:
            self.add_error("ends_at", "The end must be after the start.")
        if data.get("state") == ExperimentState.RUNNING and "surfaces" in data:
            surfaces = data["surfaces"]
            others = Experiment.objects.filter(state=ExperimentState.RUNNING).exclude(pk=self.instance.pk)
            if surfaces:  # an experiment on every surface overlaps every other
                others = others.filter(Q(surfaces=[]) | Q(surfaces__overlap=surfaces))
            clash = others.first()
            if clash is not None:
                where = ", ".join(surfaces) or "every surface"
                self.add_error(
                    "state",
                    f"Experiment {clash.name!r} already runs on {', '.join(clash.surfaces) or 'every surface'}; "
                    f"stop it before running another one on {where}.",
                )
        return data


def _arms_audit(experiment: Experiment) -> list[dict]:
    """The arms as the audit records them."""
    return [
        {
            "name": a.name,
            "control": a.is_control,
            "traffic_percent": a.traffic_percent,
            "profile": a.profile.surface if a.profile else None,
            "model_version": a.model_version.name if a.model_version else None,
            "disabled_sources": list(a.disabled_sources or ()),
        }
        for a in ExperimentArm.objects.filter(experiment=experiment)
        .select_related("profile", "model_version")
        .order_by("pk")
    ]


@admin.register(Experiment)
class ExperimentAdmin(AuditedAdmin):
    form = ExperimentForm
    inlines = [ExperimentArmInline]
    list_display = ["name", "state", "surfaces_display", "starts_at", "ends_at", "arms_display", "report"]
    list_filter = ["state"]
    search_fields = ["name", "description"]
    actions = ["stop_experiments"]
    # on the change page too: after starting it, the merchandiser's next stop is its report
    readonly_fields = ["report"]

    @admin.display(description="surfaces")
    def surfaces_display(self, obj: Experiment) -> str:
        return ", ".join(obj.surfaces) or "every surface"

    @admin.display(description="arms")
    def arms_display(self, obj: Experiment) -> str:
        return ", ".join(
            f"{a.name}{'*' if a.is_control else ''} {a.traffic_percent}%" for a in obj.arms.all()
        )

    @admin.display(description="report")
    def report(self, obj: Experiment | None) -> str:
        if obj is None or obj.pk is None:
            return "Once saved: its A/B report (lists, CTR, conversions, guardrails per arm)."
        return format_html('<a href="{}?experiment={}">report</a>', reverse("reports:experiments"), obj.pk)

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("arms")

    def save_model(self, request, obj, form, change):
        # the arms are saved after the experiment (save_related): their audit compares these
        request._experiment_arms_before = _arms_audit(obj) if change else []
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        before, after = getattr(request, "_experiment_arms_before", []), _arms_audit(form.instance)
        if before != after:
            services.audit_record(
                user=request.user, action="change", obj=form.instance, changes={"arms": [before, after]}
            )

    @admin.action(description="Stop the selected experiments (their control arm serves)")
    def stop_experiments(self, request, queryset):
        for experiment in queryset.filter(state=ExperimentState.RUNNING):
            before = experiment.state
            experiment.state = ExperimentState.STOPPED
            experiment.save(update_fields=["state", "updated_at"])
            services.audit_record(
                user=request.user,
                action="change",
                obj=experiment,
                changes={"state": [before, experiment.state]},
            )
        self.message_user(request, "Stopped. The control arm now serves on their surfaces.")

"""The admin base that records every create, change and delete as an AuditEntry (recommendations' own
admin and the experiment admin both build on it)."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.forms.models import model_to_dict

from recommendations import services


def _plain(values: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(values, cls=DjangoJSONEncoder))


class AuditedAdmin(admin.ModelAdmin):
    """Records every create, change and delete made in admin as an AuditEntry with the fields' values
    before and after, in the same transaction as the write."""

    def audit_values(self, obj) -> dict[str, Any]:
        """The fields' values as the audit records them (a subclass may name things for a person)."""
        return _plain(model_to_dict(obj))

    def save_model(self, request, obj, form, change):
        before = self.audit_values(type(obj).objects.get(pk=obj.pk)) if change and obj.pk else {}
        with transaction.atomic():
            super().save_model(request, obj, form, change)
            after = self.audit_values(obj)
            changes = {k: [before.get(k), v] for k, v in after.items() if before.get(k) != v}
            services.audit_record(
                user=request.user, action="change" if change else "create", obj=obj, changes=changes
            )

    def delete_model(self, request, obj):
        with transaction.atomic():
            services.audit_record(
                user=request.user,
                action="delete",
                obj=obj,
                changes={k: [v, None] for k, v in self.audit_values(obj).items()},
            )
            super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        with transaction.atomic():
            for obj in queryset:
                services.audit_record(
                    user=request.user,
                    action="delete",
                    obj=obj,
                    changes={k: [v, None] for k, v in self.audit_values(obj).items()},
                )
            super().delete_queryset(request, queryset)

from django.contrib import admin, messages

from core.models import ApiKey


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["name", "prefix", "is_active", "last_used_at", "created_at"]
    list_filter = ["is_active"]
    search_fields = ["name", "prefix"]
    readonly_fields = ["prefix", "last_used_at", "created_at", "updated_at"]
    fields = ["name", "is_active", "prefix", "last_used_at", "created_at", "updated_at"]

    def save_model(self, request, obj, form, change):
        if not change:
            raw = obj.assign_new_key()
            super().save_model(request, obj, form, change)
            # Shown once: only the hash is stored.
            messages.warning(
                request, f"New API key for {obj.name} (copy it now, it is not shown again): {raw}"
            )
            return
        super().save_model(request, obj, form, change)

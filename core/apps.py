from django.apps import AppConfig


class CoreConfig(AppConfig):
    """Project-wide pieces that belong to no one domain app: API keys, healthz, the embedded services."""

    name = "core"
    label = "core"
    verbose_name = "Core"
    default_auto_field = "django.db.models.BigAutoField"

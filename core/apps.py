from django.apps import AppConfig


class CoreConfig(AppConfig):
    """Project-wide pieces that belong to no one domain app: API keys, healthz, the embedded services."""

    name = "core"
    label = "core"
    verbose_name = "Core"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # registers the OpenAPI extension that writes the payload models' components (PayloadSchema)
        from core import openapi  # noqa: F401

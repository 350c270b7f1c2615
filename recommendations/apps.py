from django.apps import AppConfig


class RecommendationsConfig(AppConfig):
    name = "recommendations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from interactions.services import user_erasure

        user_erasure.connect(_erase_served_lists, dispatch_uid="recommendations.served_lists_erase")


def _erase_served_lists(sender, *, user_id: str, **kwargs) -> dict[str, int]:
    from recommendations.services import served_lists_erase

    return served_lists_erase(user_id=user_id)

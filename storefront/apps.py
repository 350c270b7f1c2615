from django.apps import AppConfig


class StorefrontConfig(AppConfig):
    name = "storefront"

    def ready(self) -> None:
        from interactions.services import user_erasure

        user_erasure.connect(_erase_visitor_sessions, dispatch_uid="storefront.visitor_sessions_erase")


def _erase_visitor_sessions(sender, *, user_id: str, session_ids=(), **kwargs) -> dict[str, int]:
    from storefront.services import visitor_sessions_erase

    return visitor_sessions_erase(user_id=user_id, session_ids=session_ids)

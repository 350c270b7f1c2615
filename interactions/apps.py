from django.apps import AppConfig


class InteractionsConfig(AppConfig):
    name = "interactions"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from catalog.signals import item_vectors_changed, items_created
        from interactions.services import on_items_created
        from interactions.tasks import on_item_vectors_changed

        # Events that arrived before their item are linked when the item is created (same transaction).
        items_created.connect(on_items_created, dispatch_uid="interactions.events_link_to_items")
        # Events that arrived before their item's vector are applied once it is written.
        item_vectors_changed.connect(on_item_vectors_changed, dispatch_uid="interactions.pending_user_events")

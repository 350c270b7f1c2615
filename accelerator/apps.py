from django.apps import AppConfig


class AcceleratorConfig(AppConfig):
    """The FAISS vector backend (`RECSYS_VECTOR_BACKEND=faiss`). See accelerator/backend.py for the design."""

    name = "accelerator"
    verbose_name = "FAISS accelerator"

    def ready(self) -> None:
        from accelerator.receivers import on_item_vectors_changed
        from recommendations.retrieval.catalog_access import item_vectors_changed

        # The signal is sent after commit by the embedding code and the item services; a dispatch_uid keeps
        # one connection however often ready() runs.
        item_vectors_changed.connect(on_item_vectors_changed, dispatch_uid="accelerator.faiss_items_apply")

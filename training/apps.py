from django.apps import AppConfig


class TrainingConfig(AppConfig):
    """Training: the two-tower model's and the ranker's training runs, their gate on the offline evaluation,
    their registry (activate, roll back) and the model versions' admin. Above analytics, whose offline
    evaluation is the gate; recommendations serves what it publishes."""

    name = "training"

    def ready(self) -> None:
        from catalog.signals import item_vectors_changed
        from training.tasks import on_item_vectors_changed

        item_vectors_changed.connect(on_item_vectors_changed, dispatch_uid="training.two_tower_items")

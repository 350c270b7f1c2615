from django.apps import AppConfig


class TrainingConfig(AppConfig):
    """Training: the two-tower model's and the ranker's training runs, the offline evaluation that gates
    them (`evaluation`, its metrics, the served path and the re-ranking ablation as methods), their registry
    (activate, roll back) and the model versions' admin. Below analytics, which stores the evaluation runs
    and runs `evaluate`; recommendations serves what it publishes."""

    name = "training"

    def ready(self) -> None:
        from catalog.signals import item_vectors_changed
        from training.tasks import on_item_vectors_changed

        item_vectors_changed.connect(on_item_vectors_changed, dispatch_uid="training.two_tower_items")

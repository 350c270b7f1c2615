from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    name = "analytics"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from analytics.services import on_evaluation_finished
        from training.signals import evaluation_finished

        # A model's gate (training) stores its evaluation as an EvaluationRun and keeps the run's id.
        evaluation_finished.connect(on_evaluation_finished, dispatch_uid="analytics.evaluation_run_store")

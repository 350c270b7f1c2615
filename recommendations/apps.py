from django.apps import AppConfig


class RecommendationsConfig(AppConfig):
    name = "recommendations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from catalog.models import Promotion
        from interactions.services import user_erasure, user_sessions
        from recommendations.models import RerankProfile
        from recommendations.selectors import serving_config_clear

        user_sessions.connect(_served_list_sessions, dispatch_uid="recommendations.served_list_sessions")
        user_erasure.connect(_erase_served_lists, dispatch_uid="recommendations.served_lists_erase")
        from interactions.signals import events_stored
        from recommendations.tasks import covisitation_enqueue

        events_stored.connect(covisitation_enqueue, dispatch_uid="recommendations.covisitation_fold")
        from interactions.signals import user_vectors_changed
        from recommendations.tasks import candidate_lists_enqueue

        user_vectors_changed.connect(candidate_lists_enqueue, dispatch_uid="recommendations.candidate_lists")
        from catalog.signals import item_vectors_changed
        from recommendations.tasks import item_lists_nearby_enqueue

        item_vectors_changed.connect(item_lists_nearby_enqueue, dispatch_uid="recommendations.item_lists")
        # An edit applies at once in this process; other processes pick it up within CONFIG_TTL_SECONDS.
        for model in (RerankProfile, Promotion):
            for signal in (post_save, post_delete):
                signal.connect(
                    serving_config_clear, sender=model, dispatch_uid=f"serving_config_{model.__name__}"
                )
        from recommendations.experiments import experiments_cache_clear
        from recommendations.models import Experiment, ExperimentArm

        # the cached experiments hold their arms' profiles and model versions
        for model in (Experiment, ExperimentArm, RerankProfile):
            for signal in (post_save, post_delete):
                signal.connect(
                    experiments_cache_clear, sender=model, dispatch_uid=f"experiments_{model.__name__}"
                )


def _served_list_sessions(sender, *, user_id: str, **kwargs) -> set[str]:
    from recommendations.selectors import served_list_sessions_of_user

    return served_list_sessions_of_user(user_id=user_id)


def _erase_served_lists(sender, *, user_id: str, session_ids=(), **kwargs) -> dict[str, int]:
    """The lists served to the user (and to their anonymous sessions), and their pre-computed candidates."""
    from recommendations.candidate_cache import candidate_lists_delete
    from recommendations.services import served_lists_erase

    erased = served_lists_erase(user_id=user_id, session_ids=session_ids)
    erased["candidate_lists"] = candidate_lists_delete(user_ids=[user_id])
    return erased

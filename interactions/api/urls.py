from django.urls import path

from interactions.api.views import EventBatchIngestView, UserEraseView

urlpatterns = [
    path("events", EventBatchIngestView.as_view(), name="events-ingest"),
    path("users/<path:user_id>", UserEraseView.as_view(), name="user-erase"),
]

from django.urls import path

from analytics import views

app_name = "reports"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("long-tail", views.long_tail, name="long_tail"),
    path("top", views.top, name="top"),
    path("evaluations", views.evaluations, name="evaluations"),
    path("evaluations/start", views.evaluation_start, name="evaluation_start"),
    path("evaluations/jobs/<int:job_id>", views.evaluation_job, name="evaluation_job"),
    path("experiments", views.experiments, name="experiments"),
]

from django.urls import path

from analytics import views

app_name = "reports"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("long-tail", views.long_tail, name="long_tail"),
    path("top", views.top, name="top"),
    path("evaluations", views.evaluations, name="evaluations"),
    path("experiments", views.experiments, name="experiments"),
]

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from recsys_project.health import healthz

api_v1 = [
    path("", include("catalog.api.urls")),
    path("", include("interactions.api.urls")),
    path("", include("recommendations.api.urls")),
]

# JSON 404s under /api/ (recsys_project/errors.py)
handler404 = "recsys_project.errors.not_found"

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("reports/", include("analytics.urls")),
    path("admin_tools_stats/", include("admin_tools_stats.urls")),
    path("", include("storefront.urls")),
]

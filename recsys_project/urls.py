import admin_tools_stats.urls
from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from core.errors import ApiNotFoundView
from core.health import healthz

api_v1 = [
    path("", include("catalog.api.urls")),
    path("", include("interactions.api.urls")),
    path("", include("recommendations.api.urls")),
]


def _staff_only(patterns):
    """django-admin-charts lets any logged-in user open its analytics pages (and the charts marked
    show_to_users); admin and reports are staff-only here, so every one of its views is wrapped."""
    return [path(str(p.pattern), staff_member_required(p.callback), name=p.name) for p in patterns]


# JSON 404s under /api/ (core/errors.py)
handler404 = "core.errors.not_found"

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # the split view serves Swagger UI's start-up code as a script file (no inline script: the CSP allows none)
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="api-docs"),
    re_path(r"^api/", ApiNotFoundView.as_view(), name="api-not-found"),  # JSON 404 even with DEBUG on
    path("reports/", include("analytics.urls")),
    path("admin_tools_stats/", include(_staff_only(admin_tools_stats.urls.urlpatterns))),
    path("", include("storefront.urls")),
]

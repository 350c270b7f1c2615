"""bench/serving_cache.py's floor: a minimal DRF endpoint with the API's own authentication, permission and
throttles, answering 10 small items from memory, next to the project's URLs."""

from django.urls import include, path
from rest_framework.response import Response
from rest_framework.views import APIView

from core.authentication import HasApiKey

_ITEMS = [{"id": f"item-{i}", "title": f"Item {i}", "score": 1.0 - i / 10} for i in range(10)]


class FloorView(APIView):
    permission_classes = [HasApiKey]

    def get(self, request):
        return Response({"items": _ITEMS})


urlpatterns = [path("bench/floor", FloorView.as_view()), path("", include("recsys_project.urls"))]

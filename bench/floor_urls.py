"""The floor of the serving benches: a minimal DRF endpoint returning 10 small items (no authentication,
no throttle, no database), served by the same gunicorn as the API, whose URLs follow unchanged. What a
request costs the framework and the loopback before the recommender does anything."""

from django.urls import include, path
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

ITEMS = [{"id": f"item-{i}", "title": f"Item {i}", "price": "9.99", "score": 1.0 - i / 10} for i in range(10)]


class FloorView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []

    def get(self, request):
        return Response({"items": ITEMS})


urlpatterns = [path("bench/floor", FloorView.as_view()), path("", include("recsys_project.urls"))]

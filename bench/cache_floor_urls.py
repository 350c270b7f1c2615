"""bench/serving_cache.py's reference points, next to the project's URLs, with the API's own authentication,
permission and throttles:

- `bench/floor`: a minimal DRF endpoint answering 10 small items from memory;
- `bench/vector`: the raw vector query: one HNSW search (`ORDER BY embedding <=> q LIMIT 10`) for one of 64
  stored item vectors, answering the 10 items' ids and distances. What retrieval alone costs through the
  same stack."""

import random

from django.db import connection
from django.urls import include, path
from rest_framework.response import Response
from rest_framework.views import APIView

from core.authentication import HasApiKey

_ITEMS = [{"id": f"item-{i}", "title": f"Item {i}", "score": 1.0 - i / 10} for i in range(10)]
_QUERIES: list[str] = []


class FloorView(APIView):
    permission_classes = [HasApiKey]

    def get(self, request):
        return Response({"items": _ITEMS})


class VectorView(APIView):
    permission_classes = [HasApiKey]

    def get(self, request):
        with connection.cursor() as cur:
            if not _QUERIES:
                cur.execute("SELECT embedding::text FROM catalog_item WHERE embedding IS NOT NULL LIMIT 64")
                _QUERIES.extend(row[0] for row in cur.fetchall())
            cur.execute(
                "SELECT external_id, embedding <=> %s::vector AS d FROM catalog_item "
                "WHERE embedding IS NOT NULL ORDER BY d LIMIT 10",
                [random.choice(_QUERIES)],
            )
            rows = cur.fetchall()
        return Response({"items": [{"id": ext, "score": 1.0 - d} for ext, d in rows]})


urlpatterns = [
    path("bench/floor", FloorView.as_view()),
    path("bench/vector", VectorView.as_view()),
    path("", include("recsys_project.urls")),
]

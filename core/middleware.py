"""Request guards that apply to every API path, before routing."""

from __future__ import annotations

from django.http import JsonResponse


class RejectNulInApiUrlMiddleware:
    """A NUL character in an API path or query string is a 400. PostgreSQL text cannot hold NUL, so an id
    such as `a%00b` reached the database and answered 500 (found by fuzzing); no valid id or parameter
    contains one."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith("/api/") and (
            "\x00" in request.path
            or "%00" in request.META.get("QUERY_STRING", "")
            or "\x00" in str(request.GET)
        ):
            return JsonResponse(
                {
                    "error": "invalid",
                    "detail": "Null characters are not allowed in the URL.",
                    "fields": {"url": ["Null characters are not allowed."]},
                },
                status=400,
            )
        return self.get_response(request)

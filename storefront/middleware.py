"""The guard every storefront request passes before its view: no control character in the URL."""

from __future__ import annotations

import re

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse

# C0 controls (NUL first: PostgreSQL text cannot hold it, so `/items/a%00b` reached the database and
# answered 500), DEL, and lone surrogates (not encodable as UTF-8). No item id, category, surface or
# event field of the storefront holds one.
UNSAFE_CHARACTERS = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")
UNSAFE_REASON = "Must not contain control characters or lone surrogates."
# The storefront's JSON endpoints; its other routes are HTML pages.
_JSON_VIEWS = {"recommendations", "events"}


class RejectControlCharactersInStorefrontUrlMiddleware:
    """A control character in the path or the query of a storefront page or endpoint is a 400 (JSON for
    the JSON endpoints, a plain page for the HTML pages), decided once here rather than in every view.
    It runs after URL resolution (process_view) so that it knows which routes are the storefront's."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view_func, view_args, view_kwargs) -> HttpResponse | None:
        match = request.resolver_match
        if match is None or "storefront" not in match.app_names:
            return None
        field = _unsafe_part(request)
        if field is None:
            return None
        if match.url_name in _JSON_VIEWS:
            return JsonResponse(
                {
                    "error": "invalid",
                    "detail": f"{field}: {UNSAFE_REASON}",
                    "fields": {field: [UNSAFE_REASON]},
                },
                status=400,
            )
        return HttpResponseBadRequest(
            f"Bad request: the {field} {UNSAFE_REASON[0].lower()}{UNSAFE_REASON[1:]}\n",
            content_type="text/plain; charset=utf-8",
        )


def _unsafe_part(request: HttpRequest) -> str | None:
    """The first part of the URL that holds an unsafe character: `path`, or the query parameter's name."""
    if UNSAFE_CHARACTERS.search(request.path):
        return "path"
    for key, values in request.GET.lists():
        if UNSAFE_CHARACTERS.search(key):
            return "query"
        if any(UNSAFE_CHARACTERS.search(value) for value in values):
            return key
    return None

"""One error shape for the whole API: {"error": CODE, "detail": ..., "fields": {field: [reasons]}}."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpResponsePermanentRedirect
from django.urls import Resolver404, resolve
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions
from rest_framework.permissions import AllowAny
from rest_framework.views import APIView, exception_handler

from core.parsers import PayloadTooLarge


class DatabaseUnavailable(exceptions.APIException):
    status_code = 503
    default_code = "database_unavailable"
    default_detail = "The database is unavailable; retry in a moment."


def api_exception_handler(exc, context):
    # Django's own exceptions, as DRF would map them, so that they get the shape below too.
    if isinstance(exc, RequestDataTooBig):
        # Raised when DRF reads request.body past DATA_UPLOAD_MAX_MEMORY_SIZE; not an APIException.
        exc = PayloadTooLarge()
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound(*exc.args)
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied(*exc.args)
    elif isinstance(exc, (OperationalError, InterfaceError)):
        # Postgres restarted (or is down): a pooled connection broke under this request. There is no
        # per-request health check (CONN_HEALTH_CHECKS costs a SELECT 1 each): Django closes the broken
        # connection when this request ends and the next request opens a new one, so the client may retry.
        exc = DatabaseUnavailable()
    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        data = response.data
        body: dict[str, Any] = {"error": "invalid", "detail": "The request is invalid; see fields."}
        if isinstance(data, dict):
            body["fields"] = data
        else:
            body["fields"] = {"non_field_errors": data}
        response.data = body
    elif isinstance(exc, exceptions.ParseError):
        # Malformed JSON: the field at fault is the body itself.
        detail = str(exc.detail)
        response.data = {"error": "parse_error", "detail": detail, "fields": {"body": [detail]}}
    elif isinstance(exc, exceptions.APIException):
        message = response.data.get("detail") if isinstance(response.data, dict) else response.data
        response.data = {"error": exc.default_code, "detail": str(message)}
    return response


def not_found(request, exception=None):
    """handler404: a URL no route matches (e.g. an id with a newline) gets the error shape under /api/,
    Django's page elsewhere. Fuzzing found HTML 404s on API paths."""
    from django.http import JsonResponse
    from django.views.defaults import page_not_found

    if request.path.startswith("/api/"):
        return JsonResponse({"error": "not_found", "detail": "No such resource."}, status=404)
    return page_not_found(request, exception)


class ApiNotFoundView(APIView):
    """The last route under /api/: an unknown path answers the JSON error shape whatever DEBUG says (with
    DEBUG on, handler404 is not used and Django would answer its HTML debug page). A DRF view, so that a
    POST gets the same answer rather than a CSRF page; it reads no credential. A path that only lacks its
    trailing slash (`/api/docs`) is redirected, as APPEND_SLASH would have."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    def _answer(self, request, *args, **kwargs):
        if not request.path.endswith("/") and request.method in ("GET", "HEAD"):
            try:
                match = resolve(request.path + "/")
            except Resolver404:
                match = None
            if match is not None and getattr(match.func, "cls", None) is not ApiNotFoundView:
                query = request.META.get("QUERY_STRING", "")
                return HttpResponsePermanentRedirect(request.path + "/" + (f"?{query}" if query else ""))
        raise exceptions.NotFound(f"No API endpoint at {request.path!r}; see /api/docs/.")

    get = post = put = patch = delete = head = options = extend_schema(exclude=True)(_answer)

"""`Authorization: Api-Key <key>` authentication, its permission and a per-key throttle."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions, throttling

from recsys_project.models import ApiKey, api_key_hash

KEYWORD = "Api-Key"


class ApiKeyAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        keyword, _, raw = header.partition(" ")
        if keyword != KEYWORD or not raw.strip():
            raise exceptions.AuthenticationFailed(f"Authorization header must be '{KEYWORD} <key>'.")
        key = ApiKey.objects.filter(key_hash=api_key_hash(raw.strip()), is_active=True).first()
        if key is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.")
        # Touch last_used_at at most once a minute: a write per request would cost more than the request.
        now = timezone.now()
        if key.last_used_at is None or (now - key.last_used_at).total_seconds() > 60:
            ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        return (None, key)

    def authenticate_header(self, request) -> str:
        # Makes DRF answer 401 (not 403) when credentials are missing.
        return KEYWORD


class HasApiKey(permissions.BasePermission):
    """Allows requests that authenticated with an active API key."""

    def has_permission(self, request, view) -> bool:
        return isinstance(request.auth, ApiKey)


class ApiKeyRateThrottle(throttling.SimpleRateThrottle):
    """Per-key rate limit (RECSYS_API_RATE, default 6000/min). Counters live in the cache (Redis); when
    Redis is down the throttle fails open rather than taking the storefront down."""

    scope = "api_key"

    def get_cache_key(self, request, view):
        if isinstance(request.auth, ApiKey):
            return self.cache_format % {"scope": self.scope, "ident": request.auth.pk}
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}

    def allow_request(self, request, view) -> bool:
        try:
            return super().allow_request(request, view)
        except Exception:  # noqa: BLE001 - cache backend down: degrade, do not fail the request
            return True


class ApiKeyScheme(OpenApiAuthenticationExtension):
    """Describes `Authorization: Api-Key <key>` in the OpenAPI schema (and keeps drf-spectacular's deploy
    check, W001, quiet)."""

    target_class = ApiKeyAuthentication
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": f"`{KEYWORD} <key>`; create keys in admin or with `manage.py create_api_key NAME`.",
        }

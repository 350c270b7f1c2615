"""`Authorization: Api-Key <key>` authentication, its permission and the API's throttles: per key, and per
client address for requests with no key or a bad one (core/ratelimit.py).

A valid key is remembered by the process for RECSYS_API_KEY_CACHE_SECONDS (a query per request was a
tenth of a cached answer's time): revoking or deleting a key takes effect at once in the process that did
it, and within that many seconds everywhere else."""

from __future__ import annotations

import time

from django.conf import settings
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions, throttling

from core.models import ApiKey, api_key_hash
from core.ratelimit import client_address, rate_limit_hit

KEYWORD = "Api-Key"

# key hash -> (monotonic time it was read, the active key). Only valid keys: a wrong key is counted by the
# address throttle instead, and a key created a second ago must work at once.
_keys: dict[str, tuple[float, ApiKey]] = {}


def api_key_active(*, raw: str) -> ApiKey | None:
    """The active key with this raw value, from the process's cache when it was read less than
    RECSYS_API_KEY_CACHE_SECONDS ago."""
    key_hash = api_key_hash(raw)
    ttl = settings.RECSYS_API_KEY_CACHE_SECONDS
    cached = _keys.get(key_hash)
    now = time.monotonic()
    if cached is not None and now - cached[0] < ttl:
        return cached[1]
    key = ApiKey.objects.filter(key_hash=key_hash, is_active=True).first()
    if key is None:
        _keys.pop(key_hash, None)
    elif ttl > 0:
        _keys[key_hash] = (now, key)
    return key


def api_keys_forget() -> None:
    _keys.clear()


@receiver(post_save, sender=ApiKey)
@receiver(post_delete, sender=ApiKey)
def _api_key_changed(sender, instance: ApiKey, **kwargs) -> None:
    # by pk: a regenerated key has a new hash, and its old one must stop working too. (The touch of
    # last_used_at saves with update(), which sends no signal: the cache survives it.)
    for key_hash, (_, key) in list(_keys.items()):
        if key.pk == instance.pk:
            _keys.pop(key_hash, None)


class ApiKeyAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            AddressRateThrottle().check(request)
            return None
        keyword, _, raw = header.partition(" ")
        if keyword != KEYWORD or not raw.strip():
            AddressRateThrottle().check(request)
            raise exceptions.AuthenticationFailed(f"Authorization header must be '{KEYWORD} <key>'.")
        key = api_key_active(raw=raw.strip())
        if key is None:
            AddressRateThrottle().check(request)
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.")
        # Touch last_used_at at most once a minute: a write per request would cost more than the request.
        now = timezone.now()
        if key.last_used_at is None or (now - key.last_used_at).total_seconds() > 60:
            ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
            key.last_used_at = now  # the cached copy too: one touch a minute, not one per cache refresh
        return (None, key)

    def authenticate_header(self, request) -> str:
        # Makes DRF answer 401 (not 403) when credentials are missing.
        return KEYWORD


class HasApiKey(permissions.BasePermission):
    """Allows requests that authenticated with an active API key."""

    def has_permission(self, request, view) -> bool:
        return isinstance(request.auth, ApiKey)


class ApiKeyRateThrottle(throttling.SimpleRateThrottle):
    """Per-key rate limit (RECSYS_API_RATE, default 6000/min), counted atomically in Redis. Requests
    without a valid key never reach it (DRF checks permissions first): AddressRateThrottle counts those."""

    scope = "api_key"

    def allow_request(self, request, view) -> bool:
        if not isinstance(request.auth, ApiKey):
            return True
        self.retry_after = rate_limit_hit(scope=self.scope, ident=str(request.auth.pk), rate=self.rate)
        return self.retry_after is None

    def wait(self) -> float | None:
        return self.retry_after


class AddressRateThrottle(throttling.SimpleRateThrottle):
    """Per client address for requests with no key or a bad one (RECSYS_API_ANON_RATE, default 120/min):
    called by the authentication itself, which runs before permissions, so that they answer 401 while under
    the limit and 429 past it. Behind a reverse proxy, set RECSYS_NUM_PROXIES (ratelimit.client_address)."""

    scope = "api_anon"

    def check(self, request) -> None:
        wait = rate_limit_hit(scope=self.scope, ident=client_address(request), rate=self.rate)
        if wait is not None:
            raise exceptions.Throttled(wait=wait)


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
            # shown in Swagger UI's Authorize box: the value is the whole header, keyword included
            "description": f"Type `{KEYWORD} <key>`: the word {KEYWORD}, a space, then your key (e.g. "
            f"`{KEYWORD} 3f9c…`). Create keys in admin or with `manage.py create_api_key NAME`.",
        }

"""Request rate limits counted in Redis: the API throttles (core/authentication.py) and the public
storefront (storefront/urls.py).

Fixed windows: a request in window `w = now // period` increments the key `...:<ident>:<w>` and sets its
expiry, as one MULTI/EXEC pipeline (one round trip). INCR is atomic in Redis, so N concurrent requests get
the distinct counts 1..N and exactly `limit` of them are allowed, however many threads or processes race
(DRF's stock throttle read a list from the cache, appended and wrote it back: 8 threads against 120/min
got 135 through). A fixed window lets a client spend its limit at the end of one window and again at the
start of the next (up to twice the rate over one period, never more); that is the price of one counter
per client instead of a log of timestamps.

One Redis client per process and URL, with its connection pool: a request costs one pooled round trip,
not a new client. When Redis is down the limits fail open (the product serves without Redis, DESIGN.md §1).
"""

from __future__ import annotations

import functools
import logging
import math
import time

import redis
from django.conf import settings
from django.http import HttpRequest, JsonResponse

logger = logging.getLogger(__name__)

PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def rate_parse(rate: str) -> tuple[int, int]:
    """`"120/min"` -> (120, 60): DRF's rate syntax (the period's first letter counts)."""
    count, _, period = rate.partition("/")
    return int(count), PERIODS[period.strip()[0]]


@functools.cache
def _client(url: str) -> redis.Redis:
    # Same timeouts as the cache: a dead Redis costs a request at most a fraction of a second.
    return redis.Redis.from_url(url, socket_connect_timeout=0.2, socket_timeout=0.5)


def rate_limit_hit(*, scope: str, ident: str, rate: str | None) -> float | None:
    """Counts one request of `ident` in `scope` against `rate`. None when it is allowed, else the seconds
    until the window ends (the Retry-After). Allowed when Redis cannot be reached, or with no rate."""
    if not rate:
        return None
    limit, period = rate_parse(rate)
    now = time.time()
    window = int(now // period)
    # under this copy's prefix, like every key: copies sharing one Redis keep their own counters
    key = f"{settings.RECSYS_REDIS_PREFIX}ratelimit:{scope}:{ident}:{window}"
    try:
        pipe = _client(settings.REDIS_URL).pipeline(transaction=True)
        pipe.incr(key)
        pipe.expire(key, period + 1)
        count, _ = pipe.execute()
    except redis.RedisError as exc:
        logger.warning("rate limit %s not counted, Redis unavailable: %s", scope, exc)
        return None
    if count <= limit:
        return None
    return max(1.0, (window + 1) * period - now)


def client_address(request: HttpRequest) -> str:
    """The client's address: REMOTE_ADDR, or behind RECSYS_NUM_PROXIES trusted reverse proxies the address
    the outermost of them saw (the entry that many places from the right of X-Forwarded-For). Entries
    further left are whatever the client wrote, so they are never trusted."""
    proxies = settings.RECSYS_NUM_PROXIES
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if proxies and forwarded:
        hops = [h.strip() for h in forwarded.split(",") if h.strip()]
        if hops:
            return hops[-min(proxies, len(hops))]
    return request.META.get("REMOTE_ADDR", "")


def too_many_requests(wait: float) -> JsonResponse:
    """429 in the API's error shape, with Retry-After in whole seconds."""
    seconds = math.ceil(wait)
    response = JsonResponse(
        {"error": "throttled", "detail": f"Request was throttled. Expected available in {seconds} seconds."},
        status=429,
    )
    response["Retry-After"] = str(seconds)
    return response


def rate_limited_by_address(*, scope: str, setting: str):
    """View decorator: at most `settings.<setting>` requests per client address in `scope`, else a 429."""

    def decorate(view):
        @functools.wraps(view)
        def wrapped(request, *args, **kwargs):
            wait = rate_limit_hit(scope=scope, ident=client_address(request), rate=getattr(settings, setting))
            if wait is not None:
                return too_many_requests(wait)
            return view(request, *args, **kwargs)

        return wrapped

    return decorate

"""Settings for the test suite: the real ones, with these changes.

- No HTTPS redirects: the test client speaks plain http.
- Rate limits per client address far above what a test sends: every test client comes from 127.0.0.1, and
  the counters outlive a test for their window (tests/project/test_ratelimit.py sets its own).
- The served-list log written at once (no background thread: a test's transaction is invisible to it).
- A second connection to the test database, `stand_in_replica`, that tests/project/test_replicas.py names
  as a read replica (RECSYS_REPLICA_ALIASES stays empty otherwise: no other test reads from it).
- Its own Redis database (RECSYS_TEST_REDIS_DB, default 15), so a running demo's worker never consumes a
  test's tasks and a test never sees the demo's cache. Concurrent test runs on one machine set different
  RECSYS_TEST_REDIS_DB and RECSYS_TEST_DB_SUFFIX values.

Workers and servers that tests start inherit this run's RECSYS_INSTANCE through the environment, so they
consume the tasks the tests send even when they are pointed at the test database by DATABASE_URL (which
would otherwise give them an instance of their own).
"""

import os
from urllib.parse import urlparse, urlunparse

from recsys_project.settings import *  # noqa: F403
from recsys_project.settings import CACHES, DATABASES, RECSYS_INSTANCE, REDIS_URL, REST_FRAMEWORK

SECURE_SSL_REDIRECT = False
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
# Each test runs inside a transaction that a flusher thread's connection cannot see into: the served-list
# log is written at once, by the request's connection (tests/recommendations/test_served_log.py turns the
# buffer on, with transactional tests).
RECSYS_SERVED_LOG_BUFFERED = False
SECURE_HSTS_SECONDS = 0
RECSYS_STOREFRONT_RATE = "100000/min"
REST_FRAMEWORK = {
    **REST_FRAMEWORK,
    "DEFAULT_THROTTLE_RATES": {**REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "api_anon": "100000/min"},
}

_parsed = urlparse(REDIS_URL)
REDIS_URL = urlunparse(_parsed._replace(path="/" + os.environ.get("RECSYS_TEST_REDIS_DB", "15")))
CELERY_BROKER_URL = REDIS_URL
CACHES = {"default": {**CACHES["default"], "LOCATION": REDIS_URL}}
os.environ.setdefault("RECSYS_INSTANCE", RECSYS_INSTANCE)
DATABASES["stand_in_replica"] = {
    **DATABASES["default"],
    "OPTIONS": {**DATABASES["default"].get("OPTIONS", {}), "connect_timeout": 1},
    "TEST": {"MIRROR": "default"},
}

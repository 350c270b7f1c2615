"""Settings for bench/serving_cache.py's gunicorn: the project's, plus the floor endpoint's URL. Used as
DJANGO_SETTINGS_MODULE=bench.cache_floor_settings."""

from recsys_project.settings import *  # noqa: F403

ROOT_URLCONF = "bench.cache_floor_urls"

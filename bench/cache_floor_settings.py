"""Settings for bench/serving_cache.py's gunicorn: the project's, plus the floor endpoint's URL."""

from recsys_project.settings import *  # noqa: F403

ROOT_URLCONF = "cache_floor_urls"

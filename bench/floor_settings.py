"""Settings of the serving benches' gunicorn: the project's own, plus the floor endpoint (bench/floor_urls.py).
Used as DJANGO_SETTINGS_MODULE=bench.floor_settings; nothing else imports it."""

from recsys_project.settings import *  # noqa: F403

ROOT_URLCONF = "bench.floor_urls"

"""Settings of the serving benches' gunicorn: the project's own, plus the floor endpoint (bench/floor_urls.py).
Used as DJANGO_SETTINGS_MODULE=floor_settings with bench/ on PYTHONPATH; nothing else imports it."""

from recsys_project.settings import *  # noqa: F403

ROOT_URLCONF = "floor_urls"

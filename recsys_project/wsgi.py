import os

from django.core.wsgi import get_wsgi_application

from core import embedded

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "recsys_project.settings")
# The web's entry point (gunicorn imports this module in each worker): start the embedded servers the settings
# point at, if they are not running (core/embedded.py).
embedded.ensure_started()
application = get_wsgi_application()

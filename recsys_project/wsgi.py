import os

# numpy's OpenBLAS runs one thread per process here, set before anything imports numpy. Its default (one
# thread per core) made the near-duplicate step's 50 x 384 matrix product of a `users` answer take 2-50 ms
# instead of 0.1 ms on a loaded 2-core machine: its threads spin waiting for cores that gunicorn's other
# workers and Postgres are using. A web worker answers one request at a time; its parallelism is the
# workers. The ranker's features had the same problem (~23 ms at the median instead of ~1 ms, bench/ranked_latency.py).
# An operator's own value wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from django.core.wsgi import get_wsgi_application  # noqa: E402

from core import embedded

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "recsys_project.settings")
# The web's entry point (gunicorn imports this module in each worker): start the embedded servers the settings
# point at, if they are not running (core/embedded.py).
embedded.ensure_started()
application = get_wsgi_application()

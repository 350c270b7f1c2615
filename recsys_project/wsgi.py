import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "recsys_project.settings")
# One BLAS thread per worker (read when numpy loads, so before the application imports it): the request
# path's products are small (500 candidates x 384 dimensions), and OpenBLAS's threads contending with the
# other workers on a loaded 2-core box made the ranker's features cost ~23 ms at the median instead of
# ~1 ms (bench/ranked_latency.py, docs/benchmarks.md "Ranked path latency").
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
application = get_wsgi_application()

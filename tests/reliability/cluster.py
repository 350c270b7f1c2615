"""The private cluster of bench/jepsen_ingest.py (its own PostgreSQL under /tmp, its own redis-server on
its own port, gunicorn and a Celery worker), for the reliability tests."""

from __future__ import annotations

from bench.jepsen_ingest import Cluster, print_report, run

__all__ = ["Cluster", "print_report", "run"]

"""The private cluster of bench/jepsen_ingest.py (its own PostgreSQL under /tmp, its own redis-server on
its own port, gunicorn and a Celery worker), for the reliability tests."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from jepsen_ingest import Cluster, print_report, run  # noqa: E402

__all__ = ["Cluster", "print_report", "run"]

"""recsys_project/wsgi.py: a web worker runs numpy's OpenBLAS on one thread (docs/serving-speed.md)."""

import json
import os
import subprocess
import sys
from pathlib import Path

# Records OPENBLAS_NUM_THREADS at the moment numpy is first imported (OpenBLAS reads it once, then), imports
# the WSGI application as gunicorn does, and prints what it saw.
_PROBE = """
import importlib.abc, json, os, sys
seen = {}
class Watch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "numpy" and "at_import" not in seen:
            seen["at_import"] = os.environ.get("OPENBLAS_NUM_THREADS")
        return None
sys.meta_path.insert(0, Watch())
import recsys_project.wsgi
import numpy
print(json.dumps(seen))
"""


def _numpy_saw(env: dict[str, str]) -> str | None:
    result = subprocess.run(
        [sys.executable, "-c", _PROBE],
        env=env,
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])["at_import"]


def test_numpy_starts_with_one_blas_thread_in_a_web_worker():
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    assert _numpy_saw(env) == "1"


def test_an_operators_blas_threads_win():
    assert _numpy_saw({**os.environ, "OPENBLAS_NUM_THREADS": "4"}) == "4"

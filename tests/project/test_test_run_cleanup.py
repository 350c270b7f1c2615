"""`make test` stops the embedded servers it started (tests/conftest.py::pytest_sessionfinish), and only
those: a PostgreSQL that was already running before the run (a demo's) keeps running."""

from __future__ import annotations

import subprocess
import sys

import pytest

from core.processes import REPO
from tests.project.processes import child_env, cleanup_data_dir, manage, postmaster_pid, short_data_dir

# A test that needs no database: the run's cost is starting the embedded servers (initdb + start on a fresh
# dir), which every run does (tests/conftest.py).
TINY = "tests/demo/test_demo_command.py::test_demo_refuses_a_port_in_use_before_doing_anything"


def pytest_run(data_dir) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pytest", TINY, "-q", "-p", "no:cacheprovider"],
        cwd=REPO, env=child_env(data_dir), capture_output=True, text=True, timeout=600,
    )  # fmt: skip


@pytest.fixture
def data_dir():
    path = short_data_dir()
    yield path
    cleanup_data_dir(path)


@pytest.mark.slow
def test_a_test_run_stops_the_embedded_postgres_it_started(data_dir):
    run = pytest_run(data_dir)
    assert run.returncode == 0, run.stdout + run.stderr
    assert (data_dir / "pg" / "PG_VERSION").exists()  # the run did start one
    assert "stopped the embedded PostgreSQL this test run started" in run.stdout
    assert postmaster_pid(data_dir) is None


@pytest.mark.slow
def test_a_test_run_leaves_running_the_postgres_that_was_running_before(data_dir):
    assert manage(data_dir, "services", "start").returncode == 0
    before = postmaster_pid(data_dir)
    assert before is not None
    run = pytest_run(data_dir)
    assert run.returncode == 0, run.stdout + run.stderr
    assert postmaster_pid(data_dir) == before

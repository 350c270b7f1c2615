"""`manage.py services start|stop|status` on an embedded PostgreSQL of its own (a short data dir in /tmp)."""

from __future__ import annotations

import pytest

from core.processes import pid_alive
from tests.project.processes import cleanup_data_dir, manage, postmaster_pid, short_data_dir

pytestmark = pytest.mark.slow


@pytest.fixture
def data_dir():
    path = short_data_dir()
    yield path
    cleanup_data_dir(path)


def test_status_and_stop_do_not_start_the_embedded_postgres(data_dir):
    status = manage(data_dir, "services", "status")
    assert status.returncode == 0, status.stderr
    assert "PostgreSQL: embedded, stopped" in status.stdout
    stop = manage(data_dir, "services", "stop")
    assert stop.returncode == 0, stop.stderr
    assert "is not running" in stop.stdout
    assert postmaster_pid(data_dir) is None


def test_start_then_stop_the_embedded_postgres(data_dir):
    start = manage(data_dir, "services", "start")
    assert start.returncode == 0, start.stderr
    pid = postmaster_pid(data_dir)
    assert pid is not None
    assert f"running (pid {pid})" in start.stdout

    status = manage(data_dir, "services", "status")
    assert f"running (pid {pid})" in status.stdout

    stop = manage(data_dir, "services", "stop")
    assert stop.returncode == 0, stop.stderr
    assert f"Stopped the embedded PostgreSQL (pid {pid})" in stop.stdout
    assert not pid_alive(pid)
    assert "stopped" in manage(data_dir, "services", "status").stdout


def test_an_unknown_action_is_refused_with_a_clear_message(data_dir):
    result = manage(data_dir, "services", "restart")
    assert result.returncode != 0
    assert "invalid choice: 'restart'" in result.stderr
    assert postmaster_pid(data_dir) is None

"""core/processes.py with real children: a stop reaches the child's own children, a child that
ignores SIGTERM is killed after the grace, and waiting for a port ends as soon as the child has exited."""

from __future__ import annotations

import sys
import time

import pytest

from core.processes import Process, ProcessError, free_port, http_status, stop_all
from tests.project.processes import processes_in_sessions

STUBBORN = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(60)"


def test_stop_ends_the_child_and_the_children_it_started():
    process = Process("shell", ["sh", "-c", "sleep 60 & sleep 60 & wait"]).start()
    deadline = time.monotonic() + 30
    while len(processes_in_sessions({process.pid})) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(processes_in_sessions({process.pid})) == 3  # sh and its two sleeps

    process.stop(grace=10)

    assert processes_in_sessions({process.pid}) == []
    assert process.returncode is not None


def test_a_child_that_ignores_sigterm_is_killed_once_the_grace_is_over():
    process = Process("stubborn", [sys.executable, "-c", STUBBORN], pipe=True).start()
    assert process.stdout.readline().strip() == "ready"
    slow: list[Process] = []

    stop_all([process], grace=0.5, on_timeout=slow.append)

    assert slow == [process]
    assert process.returncode == -9


def test_waiting_for_a_port_fails_as_soon_as_the_child_has_exited():
    process = Process("exits", [sys.executable, "-c", "raise SystemExit(3)"]).start()
    with pytest.raises(ProcessError, match="exits exited with code 3"):
        process.wait_port(free_port(), timeout=120)


def test_waiting_for_a_port_returns_once_the_child_listens():
    port = free_port()
    argv = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]
    with Process("http", argv) as process:
        process.wait_port(port, timeout=120)
        assert http_status(f"http://127.0.0.1:{port}/") == 200
    assert processes_in_sessions({process.pid}) == []

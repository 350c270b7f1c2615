"""Running `manage.py` in a child process against its own embedded PostgreSQL (tests of demo and services).

Each test gets a data dir under /tmp with a short path (the embedded server's unix socket must fit in ~100
bytes) and the Redis database of this test run (RECSYS_TEST_REDIS_DB), so nothing touches a running demo."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from django.conf import settings

from core.processes import REPO, manage_argv, pid_alive


def child_env(data_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env.pop("DATABASE_URL", None)
    env["RECSYS_DATA_DIR"] = str(data_dir)
    # this test run's Redis (its own database on its own server: test_settings.REDIS_URL)
    env["REDIS_URL"] = settings.REDIS_URL
    env["PYTHONUNBUFFERED"] = "1"
    env["HF_HUB_OFFLINE"] = "1"
    return env


def manage(data_dir: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        manage_argv(*args),
        cwd=REPO,
        env=child_env(data_dir),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def short_data_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="rt", dir="/tmp"))


def postmaster_pid(data_dir: Path) -> int | None:
    try:
        pid = int((data_dir / "pg" / "postmaster.pid").read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if pid_alive(pid) else None


def processes_in_sessions(session_ids: set[int]) -> list[str]:
    """Live processes whose session id is one of `session_ids`, as 'pid cmdline' strings."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        state, session = fields[0], int(fields[3])
        if session in session_ids and state != "Z":
            found.append(f"{entry.name} {cmdline}")
    return found


def cleanup_data_dir(data_dir: Path, *, session_ids: set[int] = frozenset()) -> None:
    """Kill whatever a failed test left behind (only in the given sessions), stop its postmaster, delete."""
    for sid in session_ids:
        try:
            os.killpg(sid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    pid = postmaster_pid(data_dir)
    if pid:
        os.kill(pid, signal.SIGINT)
        for _ in range(100):
            if not pid_alive(pid):
                break
            time.sleep(0.1)
    shutil.rmtree(data_dir, ignore_errors=True)

"""Loading the settings starts no server; the entry points do (core/embedded.py `ensure_started`).

Each test runs its children on a data dir of its own under /tmp, with no DATABASE_URL and no REDIS_URL, so
that the embedded PostgreSQL and Redis in question are theirs, and stops them at the end."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from core.processes import REPO, Process, manage_argv, start_beat, start_celery_worker
from tests.project.processes import cleanup_data_dir, postmaster_pid, processes_in_sessions, short_data_dir

pytestmark = pytest.mark.slow

SETTINGS_ONLY = "import django; django.setup(); from django.conf import settings; print(settings.REDIS_URL)"
START_TIMEOUT = 180


def own_env(data_dir: Path) -> dict[str, str]:
    """The environment of a copy of the project whose servers are all embedded, under `data_dir`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in {
            "DJANGO_SETTINGS_MODULE",
            "DATABASE_URL",
            "REDIS_URL",
            "RECSYS_EMBEDDED_REDIS_PORT",
            "RECSYS_INSTANCE",
        }
    }
    env.update(RECSYS_DATA_DIR=str(data_dir), HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1", LOG_LEVEL="WARNING")
    return env


def run(data_dir: Path, argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(
        argv, cwd=REPO, env=own_env(data_dir), capture_output=True, text=True, timeout=300, **kwargs
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def redis_url_of(data_dir: Path) -> str:
    return f"redis://127.0.0.1:{int((data_dir / 'redis' / 'port').read_text())}/0"


def redis_answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5).ping())
    except redis.RedisError:
        return False


def processes_naming(data_dir: Path) -> list[str]:
    """Live processes whose command line names the data dir (the postmaster's `-D <data dir>/pg`)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if str(data_dir) in cmdline:
                found.append(f"{entry.name} {cmdline}")
    return found


def wait_until_started(data_dir: Path, process: Process) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while not (postmaster_pid(data_dir) and (data_dir / "redis" / "port").exists()
               and redis_answers(redis_url_of(data_dir))):  # fmt: skip
        assert process.poll() is None, f"{process.name} exited with {process.returncode}{process.see_log()}"
        assert time.monotonic() < deadline, f"{process.name} started no server{process.see_log()}"
        time.sleep(0.5)


def wait_for_line(log: Path, text: str, process: Process) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while text not in log.read_text(errors="replace"):
        assert process.poll() is None, f"{process.name} exited:\n{log.read_text(errors='replace')[-3000:]}"
        assert time.monotonic() < deadline, (
            f"no {text!r} in {log}:\n{log.read_text(errors='replace')[-3000:]}"
        )
        time.sleep(0.5)


def services_stop(data_dir: Path) -> None:
    subprocess.run(manage_argv("services", "stop"), cwd=REPO, env=own_env(data_dir), capture_output=True,
                   timeout=120)  # fmt: skip


@pytest.fixture
def data_dir():
    """A fresh, empty data dir; whatever runs in it is stopped at the end."""
    path = short_data_dir()
    yield path
    services_stop(path)
    cleanup_data_dir(path)


@pytest.fixture(scope="module")
def stopped_data_dir():
    """A data dir whose PostgreSQL cluster exists (initdb done once for the module) but nothing runs."""
    path = short_data_dir()
    run(path, manage_argv("services", "start"))
    services_stop(path)
    yield path
    services_stop(path)
    cleanup_data_dir(path)


def test_loading_the_settings_starts_nothing_and_a_manage_command_starts_both(data_dir):
    loading = subprocess.Popen(
        [sys.executable, "-c", SETTINGS_ONLY],
        cwd=REPO,
        env={**own_env(data_dir), "DJANGO_SETTINGS_MODULE": "recsys_project.settings"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its session id is its pid: anything it started and left stays in it
    )
    out, err = loading.communicate(timeout=300)
    assert loading.returncode == 0, err
    url = out.strip().splitlines()[-1]
    # the settings chose and kept a port of this data dir's own (never 6379), but started nothing there
    assert url == redis_url_of(data_dir)
    assert ":6379/" not in url
    assert not redis_answers(url)
    assert not (data_dir / "redis" / "redis.pid").exists()
    assert not (data_dir / "pg" / "PG_VERSION").exists()
    assert postmaster_pid(data_dir) is None
    assert processes_in_sessions({loading.pid}) == []
    assert processes_naming(data_dir) == []

    run(data_dir, manage_argv("check"))
    pid = postmaster_pid(data_dir)
    assert pid is not None
    assert redis_url_of(data_dir) == url  # where the settings said it would be
    assert redis_answers(url)

    stopped = run(data_dir, manage_argv("services", "stop"))
    assert f"Stopped the embedded PostgreSQL (pid {pid})" in stopped.stdout
    assert "Stopped the embedded Redis." in stopped.stdout
    assert postmaster_pid(data_dir) is None
    assert not redis_answers(url)


def test_importing_the_wsgi_application_starts_both(stopped_data_dir):
    data_dir = stopped_data_dir
    assert postmaster_pid(data_dir) is None
    run(data_dir, [sys.executable, "-c", "import recsys_project.wsgi"])
    assert postmaster_pid(data_dir) is not None
    assert redis_answers(redis_url_of(data_dir))
    services_stop(data_dir)


def test_a_celery_worker_starts_both_and_beats_into_the_redis_it_started(stopped_data_dir, tmp_path):
    data_dir = stopped_data_dir
    assert postmaster_pid(data_dir) is None
    log = tmp_path / "worker.log"
    worker = start_celery_worker(
        queues=["default"], hostname=f"starttest-{os.getpid()}@%h", loglevel="WARNING",
        env=own_env(data_dir), log=log, extra=["--pool", "solo", "--without-gossip", "--without-mingle"],
    )  # fmt: skip
    try:
        wait_until_started(data_dir, worker)
        client = redis.Redis.from_url(redis_url_of(data_dir))
        deadline = time.monotonic() + START_TIMEOUT
        while not client.keys(f"recsys:*:worker:starttest-{os.getpid()}@*"):
            assert worker.poll() is None, log.read_text(errors="replace")[-3000:]
            assert time.monotonic() < deadline, "the worker never wrote its heartbeat"
            time.sleep(0.5)
    finally:
        worker.stop()
        services_stop(data_dir)


def test_a_celery_beat_starts_both_before_it_takes_the_beat_lock(stopped_data_dir, tmp_path):
    data_dir = stopped_data_dir
    assert postmaster_pid(data_dir) is None
    log = tmp_path / "beat.log"
    beat = start_beat(schedule=tmp_path / "beat-schedule", loglevel="WARNING", env=own_env(data_dir), log=log)
    try:
        wait_for_line(log, "holding the beat lock", beat)
        assert postmaster_pid(data_dir) is not None
        assert redis_answers(redis_url_of(data_dir))
    finally:
        beat.stop()
        services_stop(data_dir)

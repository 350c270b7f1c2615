"""`manage.py demo` as a user runs it: a real child process with its own embedded PostgreSQL (short data dir
under /tmp), a free port and this test run's Redis database; a tiny demo shop keeps it quick."""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import psycopg
import pytest
from django.core.management import CommandError, call_command

from core.processes import REPO, free_port, pid_alive
from tests.project.processes import (
    child_env,
    cleanup_data_dir,
    postmaster_pid,
    processes_in_sessions,
    short_data_dir,
)

BANNER = "recsys demo is running"
STARTUP_TIMEOUT = 240  # first run: initdb, migrations, demo shop, three processes (2 busy cores)


def load_scaled(seconds: float) -> float:
    """`seconds` on an idle machine, stretched by the run queue per core (at most 4x): on a shared machine
    under load a slow stop is not a hang, and a real hang still fails, with its stack (DemoRun.wait_exit)."""
    return seconds * min(4.0, max(1.0, os.getloadavg()[0] / (os.cpu_count() or 1)))


class DemoRun:
    """A `manage.py demo` child whose output is collected line by line."""

    def __init__(self, data_dir, port: int, *, items: int = 40, users: int = 4):
        self.port = port
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "demo", "--items", str(items), "--users", str(users)]
            + ["--port", str(port), "--concurrency", "1"],
            cwd=REPO,
            # Python dumps every thread's stack on SIGABRT: what a demo that does not stop was doing.
            env={**child_env(data_dir), "PYTHONFAULTHANDLER": "1"},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.output:
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.3)
        raise AssertionError(f"{text!r} not seen; demo output:\n{self.output[-5000:]}")

    def wait_exit(self, timeout: float) -> int:
        """The exit code; if the demo has not exited within `timeout`, fail with its stacks and state."""
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
        state = process_state(self.process.pid)
        self.process.send_signal(signal.SIGABRT)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.reader.join(timeout=5)
        raise AssertionError(
            f"the demo did not exit within {timeout:.0f} s (load {os.getloadavg()[0]:.1f}); it was {state}. "
            f"Its output and stacks:\n{self.output[-8000:]}"
        )

    def child_pids(self) -> dict[str, int]:
        return {m[1]: int(m[2]) for m in re.finditer(r"started (\w+) \(pid (\d+)\)", self.output)}

    def printed(self, pattern: str) -> str:
        match = re.search(pattern, self.output)
        assert match, f"{pattern!r} not in the demo output:\n{self.output[-3000:]}"
        return match[1]

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self, timeout: float = 90) -> int:
        self.process.send_signal(signal.SIGINT)
        code = self.process.wait(timeout=timeout)
        self.reader.join(timeout=5)
        return code


def process_state(pid: int) -> str:
    try:
        status = dict(
            line.split(":\t", 1)
            for line in Path(f"/proc/{pid}/status").read_text().splitlines()
            if ":\t" in line
        )
        wchan = Path(f"/proc/{pid}/wchan").read_text()
    except OSError:
        return "gone"
    return f"{status.get('State', '?').strip()}, waiting in {wchan or '-'}"


def items_loaded(data_dir) -> int:
    """Items in the demo's own database so far (0 before the table exists)."""
    try:
        with psycopg.connect(
            host=str(data_dir / "pg"), user="postgres", dbname="recsys", connect_timeout=5
        ) as c:
            return c.execute("SELECT count(*) FROM catalog_item").fetchone()[0]
    except psycopg.Error:
        return 0


def get_json(url: str, headers: dict | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def wait_for_worker(demo: DemoRun, timeout: float = 60) -> dict:
    # This demo's own worker (named demo-<pid>@host), not a heartbeat left by an earlier run's.
    name = f"demo-{demo.process.pid}@"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, body = get_json(demo.url("/healthz"))
        if status == 200 and any(w["hostname"].startswith(name) for w in body["workers"]["alive"]):
            return body
        time.sleep(1)
    raise AssertionError(f"no worker reported in /healthz: {body}")


def admin_login(demo: DemoRun, password: str) -> str:
    """Log in through the admin's login form; returns the URL the login lands on."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    form = opener.open(demo.url("/admin/login/?next=/admin/"), timeout=10).read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form)[1]
    data = urllib.parse.urlencode(
        {"csrfmiddlewaretoken": token, "username": "admin", "password": password, "next": "/admin/"}
    ).encode()
    request = urllib.request.Request(demo.url("/admin/login/?next=/admin/"), data=data)
    request.add_header("Referer", demo.url("/admin/login/"))
    with opener.open(request, timeout=10) as answer:
        return answer.geturl()


@pytest.fixture
def data_dir():
    path = short_data_dir()
    sessions: set[int] = set()
    yield path, sessions
    cleanup_data_dir(path, session_ids=sessions)


@pytest.mark.slow
def test_demo_serves_everything_and_ctrl_c_stops_every_process_and_its_postgres(data_dir):
    path, sessions = data_dir
    demo = DemoRun(path, free_port())
    try:
        demo.wait_for(BANNER, STARTUP_TIMEOUT)
        children = demo.child_pids()
        assert set(children) == {"web", "worker", "beat"}
        sessions.update(children.values())  # each child leads its own session
        postgres = postmaster_pid(path)
        assert postgres is not None

        health = wait_for_worker(demo)
        assert health["database"]["ok"] and health["database"]["pgvector"]
        assert health["redis"]["ok"]
        # the first training run was queued before the banner, and this demo's worker takes it
        assert "queued the first training run" in demo.output
        demo.wait_for("two_tower_train_maintenance_task", load_scaled(60))

        api_key = demo.printed(r"API key\s+(rk_\S+)")
        status, item = get_json(
            demo.url("/api/v1/items/demo-000001"), {"Authorization": f"Api-Key {api_key}"}
        )
        assert status == 200 and item["id"] == "demo-000001"
        password = demo.printed(r"user: admin\s+password: (\S+)")
        assert admin_login(demo, password).endswith("/admin/")
        with urllib.request.urlopen(demo.url("/api/docs/"), timeout=10) as docs:
            page = docs.read().decode()
        # Swagger UI comes from our own static files (its start-up script from the docs view itself, for
        # the CSP): the docs render with no internet.
        assets = re.findall(r'(?:src|href)="([^"]+)"', page)
        assert assets and all(a.startswith(("/static/", "/api/docs/?script")) for a in assets), assets
        for asset in assets:
            with urllib.request.urlopen(demo.url(asset), timeout=10) as answer:
                assert answer.status == 200
        with urllib.request.urlopen(demo.url("/static/admin/css/base.css"), timeout=10) as css:
            assert css.status == 200

        # the banner names what Ctrl-C stops: the PostgreSQL this demo started, not the test's REDIS_URL server
        assert (
            "Ctrl-C stops web, worker and beat and the embedded PostgreSQL this demo started." in demo.output
        )
        assert demo.stop() == 0
        assert "all stopped" in demo.output
        assert processes_in_sessions(sessions) == []
        assert not pid_alive(postgres)
    finally:
        if demo.process.poll() is None:
            demo.process.kill()


@pytest.mark.slow
def test_a_second_run_reuses_the_shop_and_key_and_prints_a_working_new_password(data_dir):
    path, sessions = data_dir
    port = free_port()
    first = DemoRun(path, port)
    try:
        first.wait_for(BANNER, STARTUP_TIMEOUT)
        sessions.update(first.child_pids().values())
        first_password = first.printed(r"password: (\S+)")
        first_key = first.printed(r"API key\s+(rk_\S+)")
        assert first.stop() == 0
    finally:
        if first.process.poll() is None:
            first.process.kill()

    second = DemoRun(path, port)
    try:
        second.wait_for(BANNER, STARTUP_TIMEOUT)
        sessions.update(second.child_pids().values())
        assert "the demo shop (40 items, 4 shoppers) is already loaded" in second.output
        assert second.printed(r"API key\s+(rk_\S+)") == first_key
        password = second.printed(r"password: (\S+)")
        assert password != first_password
        assert admin_login(second, password).endswith("/admin/")
        assert second.stop() == 0
        assert processes_in_sessions(sessions) == []
    finally:
        if second.process.poll() is None:
            second.process.kill()


@pytest.mark.slow
def test_when_a_child_dies_the_demo_stops_the_others_and_fails(data_dir):
    path, sessions = data_dir
    demo = DemoRun(path, free_port())
    try:
        demo.wait_for(BANNER, STARTUP_TIMEOUT)
        children = demo.child_pids()
        sessions.update(children.values())
        os.kill(children["web"], signal.SIGKILL)
        assert demo.process.wait(timeout=90) == 1
        assert "web exited" in demo.output
        assert processes_in_sessions(sessions) == []
        assert postmaster_pid(path) is None
    finally:
        if demo.process.poll() is None:
            demo.process.kill()


@pytest.mark.slow
def test_ctrl_c_while_loading_the_shop_stops_the_postgres_it_started(data_dir):
    path, _sessions = data_dir
    demo = DemoRun(path, free_port(), items=50_000, users=20_000)
    try:
        demo.wait_for("loading the synthetic demo shop", STARTUP_TIMEOUT)
        # Interrupt the load itself, not whatever runs just before it: wait until its first batch is in.
        deadline = time.monotonic() + load_scaled(60)
        while items_loaded(path) == 0:
            assert demo.process.poll() is None and time.monotonic() < deadline, demo.output[-3000:]
            time.sleep(0.2)
        postgres = postmaster_pid(path)
        assert postgres is not None
        demo.process.send_signal(signal.SIGINT)
        # The demo rolls back the batch in flight and stops PostgreSQL (a fast shutdown: ~1 s when idle).
        assert demo.wait_exit(load_scaled(60)) == 130
        assert "interrupted" in demo.output
        assert not pid_alive(postgres)
        assert "started web" not in demo.output
    finally:
        if demo.process.poll() is None:
            demo.process.kill()


def test_demo_refuses_a_port_in_use_before_doing_anything():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(CommandError, match=f"Port {port} on 127.0.0.1 is in use"):
            call_command("demo", port=port)

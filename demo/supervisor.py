"""Runs a few long-lived child processes together (web, worker, beat), streams their output with a name
prefix, and stops them all: on Ctrl-C/SIGTERM, or as soon as one of them exits on its own.

The children are core.processes' (each in its own session: a Ctrl-C in the terminal reaches only
the supervisor, which then stops them in order)."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from core.processes import STOP_GRACE_SECONDS, Process, stop_all

_COLORS = ["\033[36m", "\033[33m", "\033[35m", "\033[32m", "\033[34m"]
_RESET = "\033[0m"


@dataclass
class Child:
    name: str
    process: Process
    reader: threading.Thread | None = None
    color: str = ""


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
        process = Process(name, argv, env=self.env, cwd=self.cwd, pipe=True)
        self.children.append(
            Child(name=name, process=process, color=_COLORS[len(self.children) % len(_COLORS)])
        )

    def start(self) -> None:
        for child in self.children:
            child.process.start()
            child.reader = threading.Thread(target=self._pump, args=(child,), daemon=True)
            child.reader.start()
            self.say(f"started {child.name} (pid {child.process.pid}): {' '.join(child.process.argv[1:])}")

    def _pump(self, child: Child) -> None:
        for line in child.process.stdout:
            self.say(line.rstrip("\n"), name=child.name, color=child.color)

    def install_signal_handlers(self) -> None:
        def handler(signum, _frame):
            self._signals += 1
            if self._signals > 1:  # impatient second Ctrl-C: no more grace
                self.say("second signal: killing everything now")
                for child in self.children:
                    child.process.signal(signal.SIGKILL)
            self._stop.set()

        signal.signal(signal.SIGINT, handler)
        signal.signal(signal.SIGTERM, handler)

    def first_exited(self) -> Child | None:
        for child in self.children:
            if child.process.poll() is not None:
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

    def stop_all(self) -> None:
        def slow(process: Process) -> None:
            self.say(f"{process.name} did not stop in {STOP_GRACE_SECONDS:g} s; killing it")

        stop_all([child.process for child in self.children], grace=STOP_GRACE_SECONDS, on_timeout=slow)
        for child in self.children:
            if child.reader is not None:
                child.reader.join(timeout=2)
        self.say("all stopped")

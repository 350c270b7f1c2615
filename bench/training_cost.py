"""What the one refresh costs: `python manage.py train_model` (the towers, co-visitation, the ranker, each
with its gate) run as a user runs it after a bulk import, in a child process, against a bench database.

Prints the wall time of each step (the command's own "time <step>: N s" lines: two-tower training and
the rest of its step, which is its gate and the publishing of a promoted version's vectors; the
co-visitation rebuild; the ranker's training rows, its LightGBM fit and the rest, its gate), the total wall
time, the CPU seconds of the child (user + system, from its rusage), and two peaks of memory:

- the peak RSS of the child's process tree, sampled from /proc every 0.2 s (what the machine had to hold
  for the command: the parent and any worker it starts);
- `getrusage(RUSAGE_CHILDREN).ru_maxrss`: the largest single process's peak, exact (not sampled).

SQL work runs in PostgreSQL's backends, outside the child's tree: their CPU is sampled separately (every
backend connected to the bench database, from /proc, every second) and printed on its own line. The
backends' memory is mostly the server's shared buffers and is not counted.

  DATABASE_URL=postgresql://postgres@/recsys_bench_cost?host=/work/main/var/pg \\
      .venv/bin/python -m bench.training_cost --reset-from recsys_bench_cost_fresh \\
      [--profile var/train_model.prof] [-- extra train_model args]

`--reset-from` recreates the database from a copy taken right after the import (`CREATE DATABASE
recsys_bench_cost_fresh TEMPLATE recsys_bench_cost`, once): every run then starts as a shop does after a
bulk import, with nothing trained and co-visitation empty. Without it, a second run finds the first's
models active, and each gate also scores the active version.

The database must hold Online Retail as set up for bench/two_tower.py (import_online_retail, embed_items).
The command promotes and activates models in it: use a copy made for benchmarks, never a shop's database.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import unquote, urlparse

from bench.harness import REPO, Results, database_url, load_line

os.environ.setdefault("DATABASE_URL", database_url("recsys_bench_cost"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

SAMPLE_SECONDS = 0.2
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
TIME_LINE = re.compile(r"^time (\w+): ([\d.]+) s(?: \((.*)\))?$")
PART = re.compile(r"([\w ]+?) ([\d.]+) s")


def _database() -> tuple[str, str | None]:
    """(database name, socket directory or host) of DATABASE_URL."""
    url = urlparse(os.environ["DATABASE_URL"])
    host = unquote(url.hostname or "") or None
    for part in url.query.split("&"):
        if part.startswith("host="):
            host = unquote(part[5:])
    return url.path.lstrip("/"), host


def _children(pid: int) -> list[int]:
    """The direct children of `pid` (every thread's /proc children list: no scan of all of /proc)."""
    out: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += [int(c) for c in f.read().split()]
        except OSError:
            continue
    return out


def _rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * PAGE_BYTES
    except OSError:
        return 0


def _cpu_seconds(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime


class TreeSampler(threading.Thread):
    """The peak of the summed RSS of `root` and its descendants, sampled every SAMPLE_SECONDS."""

    def __init__(self, root: int) -> None:
        super().__init__(daemon=True)
        self.root, self.peak, self.peak_processes = root, 0, 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            pids, todo = [], [self.root]
            while todo:
                pid = todo.pop()
                pids.append(pid)
                todo += _children(pid)
            total = sum(_rss_bytes(pid) for pid in pids)
            if total > self.peak:
                self.peak, self.peak_processes = total, len(pids)
            self.stop.wait(SAMPLE_SECONDS)


class BackendSampler(threading.Thread):
    """CPU seconds of the PostgreSQL backends connected to the bench database (its own connection
    excluded), read from /proc once a second: each backend's last reading minus what it had used before
    the run (`baseline`, for one already connected). A backend that exits between two readings loses
    up to a second. Only a server on this machine (a unix socket) can be read."""

    def __init__(self, name: str, host: str | None) -> None:
        super().__init__(daemon=True)
        self.name, self.host = name, host
        self.before: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self.stop = threading.Event()
        self.error = "" if host and host.startswith("/") else "not a local socket"
        self.conn = None

    def _read(self) -> dict[int, float]:
        rows = self.conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", [self.name]
        ).fetchall()
        cpu = {pid: _cpu_seconds(pid) for (pid,) in rows}
        return {pid: c for pid, c in cpu.items() if c is not None}

    def baseline(self) -> None:
        """Read the backends already connected (call before starting the command)."""
        if self.error:
            return
        import psycopg

        self.conn = psycopg.connect(host=self.host, user="postgres", dbname=self.name, autocommit=True)
        self.before = self._read()

    def run(self) -> None:
        if self.error:
            return
        try:
            while not self.stop.is_set():
                self.last.update(self._read())
                self.stop.wait(1.0)
        finally:
            self.conn.close()

    @property
    def cpu_seconds(self) -> float:
        return sum(cpu - self.before.get(pid, 0.0) for pid, cpu in self.last.items())


def _reset(name: str, host: str | None, *, template: str) -> None:
    import psycopg

    if not template.startswith("recsys_bench") or template == name:
        sys.exit(f"--reset-from must name another recsys_bench* database, not {template!r}")
    with psycopg.connect(host=host, user="postgres", dbname="postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    print(f"database {name} recreated from {template}")


def _seconds(parts: str | None) -> dict[str, float]:
    return {name.strip(): float(value) for name, value in PART.findall(parts or "")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", help="Run the child under cProfile, writing the stats to this file.")
    parser.add_argument(
        "--reset-from",
        metavar="TEMPLATE",
        help="First recreate the database as a copy of this one (e.g. a copy taken right after the import): "
        "every run then starts from the same state, with no model trained yet.",
    )
    parser.add_argument("extra", nargs="*", help="More train_model arguments (after --).")
    args = parser.parse_args()
    name, host = _database()
    if not name.startswith("recsys_bench"):
        sys.exit(f"refusing to run outside a recsys_bench* database (DATABASE_URL names {name!r})")

    if args.reset_from:
        _reset(name, host, template=args.reset_from)

    command = [sys.executable]
    if args.profile:
        command += ["-m", "cProfile", "-o", str(Path(args.profile).resolve())]
    command += [str(REPO / "manage.py"), "train_model", "--no-progress", *args.extra]
    print(f"database {name}; {' '.join(command[1:])}")
    print(load_line("before"))
    results = Results("train_model on Online Retail")

    backends = BackendSampler(name, host)
    backends.baseline()
    backends.start()
    started = time.perf_counter()
    child = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, text=True, env=os.environ.copy())
    tree = TreeSampler(child.pid)
    tree.start()
    steps: dict[str, tuple[float, dict[str, float]]] = {}
    assert child.stdout is not None
    for line in child.stdout:
        print(f"  | {line.rstrip()}", flush=True)
        match = TIME_LINE.match(line.strip())
        if match:
            steps[match.group(1)] = (float(match.group(2)), _seconds(match.group(3)))
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    tree.stop.set()
    backends.stop.set()
    tree.join()
    backends.join(timeout=5)
    if child.returncode != 0:
        sys.exit(f"train_model exited with {child.returncode}")

    def cpu(parts: dict[str, float], name: str = "cpu") -> str:
        return f" (cpu {parts[name]:.0f} s)" if name in parts else ""

    if "two_tower" in steps:
        total, parts = steps["two_tower"]
        training = parts.get("training", 0.0)
        results.add("two-tower: training + gate (+ publishing if promoted)", f"{total:.0f} s{cpu(parts)}")
        results.add("two-tower: training / the rest", f"{training:.0f} s / {total - training:.0f} s")
    if "covisitation" in steps:
        total, parts = steps["covisitation"]
        results.add("co-visitation rebuild", f"{total:.0f} s{cpu(parts)}")
    if "ranker" in steps:
        total, parts = steps["ranker"]
        rows, fit = parts.get("training rows", 0.0), parts.get("LightGBM", 0.0)
        results.add("ranker: whole step", f"{total:.0f} s{cpu(parts)}")
        results.add(
            "ranker: training rows (inner split, co-visitation matrices included)",
            f"{rows:.0f} s{cpu(parts, 'training rows cpu')}",
        )
        results.add("ranker: LightGBM fit", f"{fit:.0f} s{cpu(parts, 'LightGBM cpu')}")
        rest = parts.get("cpu", 0.0) - parts.get("training rows cpu", 0.0) - parts.get("LightGBM cpu", 0.0)
        results.add(
            "ranker: gate", f"{total - rows - fit:.0f} s" + (f" (cpu {rest:.0f} s)" if "cpu" in parts else "")
        )
    results.add("train_model's own total", f"{steps.get('total', (float('nan'), {}))[0]:.0f} s")
    results.add("**wall time of the child** (start-up included)", f"**{wall:.0f} s**")
    cpu = usage.ru_utime + usage.ru_stime
    results.add(
        "CPU seconds of the child (user + system)", f"{cpu:.0f} s ({cpu / wall:.2f} cores on average)"
    )
    if not backends.error:
        results.add("CPU seconds of PostgreSQL backends (sampled 1/s)", f"{backends.cpu_seconds:.0f} s")
    results.add(
        "**peak RSS of the child's process tree** (sampled every 0.2 s)",
        f"**{tree.peak / 2**20:.0f} MB** ({tree.peak_processes} process(es))",
    )
    results.add(
        "peak RSS of the largest single process (ru_maxrss, exact)",
        f"{resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024:.0f} MB",
    )
    results.print()
    print(load_line("after"))


if __name__ == "__main__":
    main()

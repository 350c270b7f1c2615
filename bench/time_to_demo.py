"""Time from `make demo` to a populated demo, from a clean clone (issue 16 §4: within 2 minutes after the
install step, on 2 cores).

    .venv/bin/python -m bench.time_to_demo [--branch wt-f] [--redis redis://127.0.0.1:<port>/15]

Clones the branch (committed work only) into a temporary directory, links this checkout's virtualenv into
it (the install step is not timed: `make -o .venv/.installed demo` treats it as done), gives it its own
empty data dir (a new embedded PostgreSQL: initdb and migrations are timed), starts `make demo` on a free
port and waits for the banner. It then checks that what the demo promises is there: trending (not "new
arrival") on the storefront, lists served over the past days and an evaluation run (from the demo's own
database), and stops the demo with Ctrl-C. Prints each warm-up step, the total, and, as the floor measured
in the same run, the time of `manage.py check` in the clone (Python + Django + settings start-up; run as
`django.setup()` and the `check` command, since manage.py would start the embedded servers again), with
the load average before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import psycopg

from bench.harness import REPO, cores, load_average

BANNER = "recsys demo is running"
FLOOR = (
    "import django; django.setup(); from django.core.management import call_command; call_command('check')"
)
TIMEOUT = 900


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--branch", default=None, help="branch to clone (default: the current one)")
    parser.add_argument("--redis", default=os.environ.get("REDIS_URL", ""), help="REDIS_URL for the demo")
    args = parser.parse_args()
    from core.processes import Process, free_port

    branch = (
        args.branch
        or subprocess.check_output(["git", "rev-parse", "--abbrev-ref", "HEAD"], cwd=REPO, text=True).strip()
    )
    tmp = Path(tempfile.mkdtemp(prefix="ttd-", dir="/tmp"))
    clone, data = tmp / "c", tmp / "d"
    subprocess.run(["git", "clone", "--quiet", "--branch", branch, str(REPO), str(clone)], check=True)
    (clone / ".venv").symlink_to((REPO / ".venv").resolve())
    port = free_port()
    env = {**os.environ, "RECSYS_DATA_DIR": str(data), "HF_HUB_OFFLINE": "1"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    if args.redis:
        env["REDIS_URL"] = args.redis
    load_before = load_average()

    lines: list[str] = []
    started = time.monotonic()
    demo = Process(
        "demo",
        ["make", "-o", ".venv/.installed", "demo", f"DEMO_ARGS=--port {port}"],
        env=env,
        cwd=clone,
        pipe=True,
    ).start()
    stamps: list[tuple[float, str]] = []

    def read() -> None:
        for line in demo.stdout:
            lines.append(line.rstrip("\n"))
            stamps.append((time.monotonic() - started, line.rstrip("\n")))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    ready = None
    while time.monotonic() - started < TIMEOUT and demo.poll() is None:
        if any(BANNER in line for line in lines):
            ready = time.monotonic() - started
            break
        time.sleep(0.2)
    checks: dict[str, object] = {}
    try:
        if ready is None:
            print("\n".join(lines[-60:]))
            print(f"the demo did not print its banner within {TIMEOUT} s")
            return 1
        base = f"http://127.0.0.1:{port}"
        with urllib.request.urlopen(f"{base}/storefront/recommendations/trending?limit=8", timeout=10) as r:
            answer = json.loads(r.read())
        checks["trending reasons"] = sorted({i["reason"]["type"] for i in answer["items"]})
        with psycopg.connect(host=str(data / "pg"), user="postgres", dbname="recsys") as c:
            checks["days with lists served"] = c.execute(
                "SELECT count(DISTINCT created_at::date) FROM recommendations_servedlist"
            ).fetchone()[0]
            checks["attributed clicks"] = c.execute(
                "SELECT count(*) FROM analytics_attribution WHERE kind = 'click'"
            ).fetchone()[0]
            checks["days rolled up"] = c.execute(
                "SELECT count(DISTINCT day) FROM analytics_dailymetric WHERE lists_served > 0"
            ).fetchone()[0]
            checks["evaluation runs"] = c.execute("SELECT count(*) FROM analytics_evaluationrun").fetchone()[
                0
            ]
    finally:
        demo.stop(grace=120, sig=signal.SIGINT)  # Ctrl-C, as a user stops the demo
        reader.join(timeout=5)

    floor_started = time.monotonic()
    # What `manage.py check` does, without manage.py's start of the embedded servers (the demo stopped them).
    subprocess.run(
        [str(clone / ".venv/bin/python"), "-c", FLOOR],
        cwd=clone,
        env={**env, "DJANGO_SETTINGS_MODULE": "recsys_project.settings"},
        check=True,
        capture_output=True,
    )
    floor = time.monotonic() - floor_started
    load_after = load_average()

    print("warm-up steps (seconds since `make demo` started):")
    for at, line in stamps:
        if line.startswith("==") or re.match(r"\s+(in |\d+ visits)", line):
            print(f"  {at:6.1f}  {line}")
    for name, value in checks.items():
        print(f"check: {name}: {value}")
    print(f"time to a populated demo: {ready:.1f} s (from `make demo` to the banner, install step excluded)")
    print(f"floor, `manage.py check` in the clone: {floor:.1f} s; ratio {ready / floor:.1f}x")
    print(f"load average before {load_before:.2f}, after {load_after:.2f} ({cores()} cores)")
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

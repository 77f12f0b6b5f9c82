"""The OpenAI-compatible embedder, against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import contextlib
import hashlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import numpy as np
import pytest

from docshelf.embed import Embedder, get_embedder
from docshelf.embed.openai import OPENAI_BASE_URL, OpenAICompatibleEmbedder, _retry_after
from docshelf.embed.tokenizer import count_tokens
from docshelf.errors import ConfigError, EmbedError

DIM = 8


def raw_vector(text: str) -> list[float]:
    """Return the server's vector for `text`: deterministic and deliberately not unit length."""
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")
    return (np.random.default_rng(seed).normal(size=DIM) * 3).tolist()


def unit(text: str) -> np.ndarray:
    """Return the unit vector the client should make of the server's vector for `text`."""
    vector = np.array(raw_vector(text), dtype=np.float32)
    return vector / np.linalg.norm(vector)


@dataclass
class Reply:
    """A scripted answer the server gives instead of embeddings."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    delay: float = 0.0


class EmbeddingsServer(ThreadingHTTPServer):
    """POST /v1/embeddings like OpenAI's; plays `script` first, one reply per request, and keeps requests."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), EmbeddingsHandler)
        self.script: list[Reply] = []
        self.requests: list[dict[str, Any]] = []

    @property
    def base_url(self) -> str:
        """Return the API root, as a user would configure it."""
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/v1"


class EmbeddingsHandler(BaseHTTPRequestHandler):
    """Answers one request to an EmbeddingsServer."""

    server: EmbeddingsServer

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
        if self.path != "/v1/embeddings":
            return self._send(404, {"error": {"message": f"no route {self.path}"}})
        if self.server.script:
            reply = self.server.script.pop(0)
            time.sleep(reply.delay)
            return self._send(reply.status, reply.body or {"error": {"message": "scripted"}}, reply.headers)
        data = [
            {"object": "embedding", "index": i, "embedding": raw_vector(text)}
            for i, text in enumerate(body["input"])
        ]
        # Reversed: the client must put vectors in order by their index, as OpenAI documents.
        self._send(200, {"object": "list", "data": data[::-1], "model": body["model"]})

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        # A client that timed out has hung up, which is what the timeout test wants.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        """Keep the test output quiet."""


@pytest.fixture(scope="module")
def running_server() -> Iterator[EmbeddingsServer]:
    """Return a server on 127.0.0.1 that runs for the whole module."""
    server = EmbeddingsServer()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def server(running_server: EmbeddingsServer) -> EmbeddingsServer:
    """Return the module's server with an empty script and no requests recorded."""
    running_server.script.clear()
    running_server.requests.clear()
    return running_server


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    """Return one HTTP client for the module (building one costs about 0.1 s)."""
    with httpx.Client(timeout=5.0) as client:
        yield client


@pytest.fixture
def make(server: EmbeddingsServer, http: httpx.Client) -> Any:
    """Return a factory of embedders pointed at the server, sharing the module's client."""

    def factory(**options: Any) -> OpenAICompatibleEmbedder:
        options = {"base_url": server.base_url, "backoff": 0.01, "client": http, **options}
        return OpenAICompatibleEmbedder(options.pop("model", "nomic-embed-text"), **options)

    return factory


def test_vectors_are_unit_float32_in_input_order_and_batched(make: Any, server: EmbeddingsServer) -> None:
    texts = [f"text number {i}" for i in range(5)]
    vectors = make(batch_size=2).embed_documents(texts)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(vectors, np.stack([unit(t) for t in texts]), atol=1e-6)
    assert [r["body"]["input"] for r in server.requests] == [texts[0:2], texts[2:4], texts[4:]]
    assert {r["body"]["model"] for r in server.requests} == {"nomic-embed-text"}


def test_is_an_embedder_and_query_matches_documents(make: Any) -> None:
    embedder = make(dim=DIM)
    assert isinstance(embedder, Embedder)
    np.testing.assert_array_equal(embedder.embed_query("q"), embedder.embed_documents(["q"])[0])


def test_dim_is_learnt_from_the_first_response(make: Any, server: EmbeddingsServer) -> None:
    embedder = make()
    assert embedder.dim == DIM
    assert embedder.embed_documents([]).shape == (0, DIM)
    assert len(server.requests) == 1  # one probe, then remembered


def test_empty_list_with_known_dim_sends_nothing(make: Any, server: EmbeddingsServer) -> None:
    assert make(dim=DIM).embed_documents([]).shape == (0, DIM)
    assert server.requests == []


def test_wrong_dimension_is_an_embed_error(make: Any) -> None:
    with pytest.raises(EmbedError, match=r"8-dimensional vectors .* expected 1536"):
        make(dim=1536).embed_query("text")


def test_429_waits_as_long_as_retry_after_says(make: Any, server: EmbeddingsServer) -> None:
    server.script.append(Reply(429, {"Retry-After": "1"}))
    started = time.monotonic()
    vector = make().embed_query("text")
    assert time.monotonic() - started >= 0.9  # backoff alone would wait 0.01 s
    np.testing.assert_allclose(vector, unit("text"), atol=1e-6)
    assert len(server.requests) == 2


def test_5xx_is_retried_with_backoff(make: Any, server: EmbeddingsServer) -> None:
    server.script += [Reply(500), Reply(503)]
    np.testing.assert_allclose(make().embed_query("text"), unit("text"), atol=1e-6)
    assert len(server.requests) == 3


def test_giving_up_after_max_retries_is_an_embed_error(make: Any, server: EmbeddingsServer) -> None:
    server.script += [Reply(502)] * 3
    with pytest.raises(EmbedError, match="answered 502 after 3 attempts"):
        make(max_retries=2).embed_query("text")
    assert len(server.requests) == 3


def test_401_is_a_config_error_naming_the_key_variable(make: Any, server: EmbeddingsServer) -> None:
    server.script.append(Reply(401, body={"error": {"message": "Incorrect API key provided"}}))
    with pytest.raises(ConfigError, match=r"DOCSHELF_EMBED_API_KEY.*Incorrect API key provided"):
        make(api_key="sk-wrong").embed_query("text")
    assert len(server.requests) == 1  # a bad key is not retried


def test_wrong_base_url_is_a_config_error(make: Any, server: EmbeddingsServer) -> None:
    with pytest.raises(ConfigError, match="404: check DOCSHELF_EMBED_BASE_URL"):
        make(base_url=server.base_url.removesuffix("/v1")).embed_query("text")


def test_bad_request_is_an_embed_error_with_the_server_message(make: Any, server: EmbeddingsServer) -> None:
    server.script.append(Reply(400, body={"error": {"message": "input is too long"}}))
    with pytest.raises(EmbedError, match=r"answered 400. input is too long"):
        make().embed_query("text")


def test_timeout_is_retried_then_an_embed_error(make: Any, server: EmbeddingsServer) -> None:
    server.script += [Reply(200, delay=0.5), Reply(200, delay=0.5)]
    embedder = make(client=None, timeout=0.1, max_retries=1)
    with pytest.raises(EmbedError, match=r"could not reach .* after 2 attempts"):
        embedder.embed_query("text")
    embedder.close()


def test_close_leaves_a_client_it_was_given_open(make: Any, http: httpx.Client) -> None:
    make().close()
    assert not http.is_closed


def test_unreachable_server_is_an_embed_error(make: Any) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(EmbedError, match="could not reach"):
        make(base_url=f"http://127.0.0.1:{port}/v1", max_retries=1).embed_query("text")


def test_api_key_is_sent_as_bearer_token_only_when_given(make: Any, server: EmbeddingsServer) -> None:
    make(api_key="sk-test", dim=DIM).embed_query("a")
    make(dim=DIM).embed_query("b")
    assert [r["headers"].get("Authorization") for r in server.requests] == ["Bearer sk-test", None]


def test_model_id_names_the_server_unless_the_model_is_openais(make: Any, server: EmbeddingsServer) -> None:
    assert make().model_id == f"openai:nomic-embed-text@{server.base_url.split('/')[2]}"
    assert make(model="text-embedding-3-small", base_url=OPENAI_BASE_URL).model_id == (
        "openai:text-embedding-3-small"
    )
    # A gateway serving OpenAI's model under its name gives the same vectors as OpenAI itself.
    assert make(model="text-embedding-3-large").model_id == "openai:text-embedding-3-large"


def test_count_tokens_is_the_bundled_estimate(make: Any) -> None:
    text = "How do I install the package?"
    assert make(dim=DIM).count_tokens(text) == count_tokens(text)


def test_registry_reads_base_url_and_key_from_the_environment(
    server: EmbeddingsServer, http: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCSHELF_EMBED_BASE_URL", server.base_url)
    monkeypatch.delenv("DOCSHELF_EMBED_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-fallback")
    get_embedder("openai:nomic-embed-text", dim=DIM, client=http).embed_query("a")
    monkeypatch.setenv("DOCSHELF_EMBED_API_KEY", "sk-docshelf")
    get_embedder("openai:nomic-embed-text", dim=DIM, client=http).embed_query("b")
    assert [r["headers"]["Authorization"] for r in server.requests] == [
        "Bearer sk-fallback",
        "Bearer sk-docshelf",
    ]


@pytest.mark.parametrize(
    ("header", "expected"),
    [(None, None), ("2", 2.0), ("0", 0.0), ("3600", 60.0), ("soon", None)],
)
def test_retry_after_header(header: str | None, expected: float | None) -> None:
    headers = {} if header is None else {"Retry-After": header}
    assert _retry_after(httpx.Response(429, headers=headers)) == expected


def test_retry_after_http_date() -> None:
    in_five_seconds = formatdate(time.time() + 5, usegmt=True)
    assert _retry_after(httpx.Response(429, headers={"Retry-After": in_five_seconds})) == pytest.approx(
        5, abs=1.5
    )

"""The origin's own vectors are searchable through any server that serves OpenAI's embedding model."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from docshelf.cli import cli

SEED = Path(__file__).parent / "store" / "seed" / "record-example.txt"
SEED_URL = "https://ai.pydantic.dev/api/agent/"


def seed_vector() -> list[float]:
    """Return the seed record's embedding, as the origin stored it."""
    line = next(l for l in SEED.read_text().splitlines() if l.startswith("embedding:"))
    return json.loads(line.partition(":")[2])


class Gateway(ThreadingHTTPServer):
    """An OpenAI-compatible gateway on 127.0.0.1 that embeds every text as `vector` and logs the model asked."""

    daemon_threads = True

    def __init__(self, vector: list[float]) -> None:
        super().__init__(("127.0.0.1", 0), GatewayHandler)
        self.vector = vector
        self.models: list[str] = []


class GatewayHandler(BaseHTTPRequestHandler):
    server: Gateway

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.models.append(body["model"])
        data = [{"object": "embedding", "index": i, "embedding": self.server.vector} for i in range(len(body["input"]))]
        payload = json.dumps({"object": "list", "data": data, "model": body["model"]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        """Keep the test output quiet."""


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    server = Gateway(seed_vector())
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_seed_shelf_is_vector_searchable_through_a_compatible_gateway(
    gateway: Gateway, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = str(tmp_path / "seed.db")
    runner = CliRunner()
    assert runner.invoke(cli, ["--db", db, "import", str(SEED), "--model", "openai:text-embedding-3-small"]).exit_code == 0
    host, port = gateway.server_address[:2]
    monkeypatch.setenv("DOCSHELF_EMBED_BASE_URL", f"http://{host}:{port}/v1")
    monkeypatch.setenv("DOCSHELF_EMBED_API_KEY", "sk-gateway")

    result = runner.invoke(cli, ["--db", db, "search", "run function parameters", "--mode", "vector", "--json"])

    assert result.exit_code == 0, result.output
    [hit] = json.loads(result.stdout)
    assert hit["url"].startswith(SEED_URL) and hit["chunk_number"] == 21
    assert gateway.models == ["text-embedding-3-small"]

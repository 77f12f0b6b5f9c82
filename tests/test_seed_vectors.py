"""The origin's own vectors are searchable through any server that serves OpenAI's embedding model."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from docshelf.cli import cli

SEED = Path(__file__).parent / "store" / "seed" / "record-example.txt"
SEED_URL = "https://ai.pydantic.dev/api/agent/"


def seed_vector() -> list[float]:
    """Return the seed record's embedding, as the origin stored it."""
    line = next(l for l in SEED.read_text().splitlines() if l.startswith("embedding:"))
    return json.loads(line.partition(":")[2])


def other_vector(seed: int) -> list[float]:
    """Return a random unit vector of the seed's size, the same for the same seed (another page's embedding)."""
    v = np.random.default_rng(seed).standard_normal(1536)
    return [round(float(x), 8) for x in v / np.linalg.norm(v)]


OTHER_PAGES = {f"https://ai.pydantic.dev/api/other-{n}/": other_vector(n) for n in range(5)}


def other_records(path: Path) -> Path:
    """Write five records of other pages, each with its own vector, beside the seed; return the file."""
    records = [
        f"---\nurl: {url}\nsession_id: pydantic_ai_docs\nchunk_number: 0\ntitle: Other {n}\nsummary: other page {n}\n"
        f"embedding: {json.dumps(vector)}\nmetadata : {{}}\nupdated_dt: 2025-03-14T10:14:19.386694\n---\nOther page {n}."
        for n, (url, vector) in enumerate(OTHER_PAGES.items())
    ]
    path.write_text("\n".join(records))
    return path


class Gateway(ThreadingHTTPServer):
    """An OpenAI-compatible gateway on 127.0.0.1 that embeds each known text as its vector and logs the model asked."""

    daemon_threads = True

    def __init__(self, vectors: dict[str, list[float]]) -> None:
        super().__init__(("127.0.0.1", 0), GatewayHandler)
        self.vectors = vectors
        self.models: list[str] = []


class GatewayHandler(BaseHTTPRequestHandler):
    server: Gateway

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.models.append(body["model"])
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        data = [{"object": "embedding", "index": i, "embedding": self.server.vectors[text]} for i, text in enumerate(texts)]
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
    server = Gateway({"run function parameters": seed_vector(), "the third other page": OTHER_PAGES[
        "https://ai.pydantic.dev/api/other-3/"]})
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
    others = other_records(tmp_path / "others.txt")
    imported = runner.invoke(cli, ["--db", db, "import", str(SEED), str(others), "--model", "openai:text-embedding-3-small"])
    assert imported.exit_code == 0, imported.output
    host, port = gateway.server_address[:2]
    monkeypatch.setenv("DOCSHELF_EMBED_BASE_URL", f"http://{host}:{port}/v1")
    monkeypatch.setenv("DOCSHELF_EMBED_API_KEY", "sk-gateway")

    # Six chunks, six vectors: the query's vector must pick out its own page, whichever it is.
    for query, url in (("run function parameters", SEED_URL), ("the third other page", "https://ai.pydantic.dev/api/other-3/")):
        result = runner.invoke(cli, ["--db", db, "search", query, "--mode", "vector", "-k", "6", "--json"])
        assert result.exit_code == 0, result.output
        hits = json.loads(result.stdout)
        assert len(hits) == 6 and hits[0]["url"].startswith(url), [h["url"] for h in hits]
        assert hits[0]["score"] > hits[1]["score"]
    assert gateway.models == ["text-embedding-3-small"] * 2

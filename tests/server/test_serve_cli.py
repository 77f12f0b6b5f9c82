"""`docshelf serve`: the refusal to serve other machines without a token, and the real server as a subprocess
(API, token, read-only, Host check and MCP at /mcp), driven over HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import httpx2
import pytest
from click.testing import CliRunner
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from test_api import assert_error

from docshelf.cli import cli
from docshelf.cli.serve import is_loopback

TOKEN = "serve-test-token"
READ_TOOLS = ["list_pages", "list_sources", "read_page", "search_docs"]
WRITE_TOOLS = ["add_source", "job_status", "refresh_source", "remove_source"]


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::", "example.org"])
def test_serving_other_machines_without_a_token_is_refused(
    shelf_copy: Path, host: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCSHELF_TOKEN", "")  # set but empty is no token
    result = CliRunner().invoke(cli, ["--db", str(shelf_copy), "serve", "--host", host])
    assert result.exit_code == 2
    assert result.output == (
        f"Error: --host {host} makes the shelf reachable from other machines; give --token "
        "TOKEN (or set DOCSHELF_TOKEN), or serve on 127.0.0.1\n"
    )


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.0.0.1", False),
        ("docs.internal", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serve(db: Path, *flags: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """Run `docshelf serve` as a subprocess on a free port; yield its base URL once it answers."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "docshelf", "--db", str(db), "serve", "--port", str(port), *flags],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{base}/login", timeout=1)
                break
            except httpx.TransportError:
                assert process.poll() is None and time.monotonic() < deadline, process.stderr.read().decode()
                time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)
        assert process.stderr is not None
        log = process.stderr.read().decode()
        process.stderr.close()
        assert "Traceback" not in log, log


def mcp_tools(url: str, headers: dict[str, str]) -> tuple[list[str], str]:
    """Return the MCP server's tool names and the text of one search_docs call."""

    async def session() -> tuple[list[str], str]:
        async with (
            httpx2.AsyncClient(headers=headers) as http,
            Client(streamable_http_client(url, http_client=http)) as client,
        ):
            names = sorted(t.name for t in (await client.list_tools()).tools)
            found = await client.call_tool("search_docs", {"query": "tessellate", "k": 2})
            return names, "".join(part.text for part in found.content)

    return asyncio.run(session())


def test_a_server_with_a_token(shelf_copy: Path) -> None:
    with serve(shelf_copy, "--token", TOKEN) as base:
        assert_error(httpx.get(f"{base}/api/sources"), 401, "unauthorized")
        auth = {"Authorization": f"Bearer {TOKEN}"}
        hits = httpx.get(f"{base}/api/search", params={"q": "tessellate", "k": 2}, headers=auth).json()[
            "hits"
        ]
        assert hits[0]["url"].split("#")[0].endswith("/api.html")
        assert httpx.get(f"{base}/", follow_redirects=False).headers["location"] == "/login?next=/"
        # A rebinding Host does not matter with a token: the attacker's page does not have it.
        assert (
            httpx.get(f"{base}/api/sources", headers={**auth, "Host": "rebound.example"}).status_code == 200
        )

        names, found = mcp_tools(f"{base}/mcp", auth)
        assert names == sorted(READ_TOOLS + WRITE_TOOLS) and "/api.html#" in found
        assert_error(
            httpx.post(f"{base}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
            401,
            "unauthorized",
        )


def test_a_read_only_server_without_a_token(shelf_copy: Path) -> None:
    with serve(shelf_copy, "--read-only") as base:
        assert_error(httpx.post(f"{base}/api/sources", json={"url": "http://127.0.0.1:1/"}), 403, "read_only")
        assert_error(httpx.delete(f"{base}/api/sources/widgets"), 403, "read_only")
        assert_error(
            httpx.get(f"{base}/api/sources", headers={"Host": "rebound.example"}), 403, "forbidden_host"
        )
        assert httpx.get(f"{base}/api/sources").json()["sources"][0]["pages"] == 4
        assert "/api/search" in httpx.get(f"{base}/openapi.json").json()["paths"]
        names, found = mcp_tools(f"{base}/mcp", {})
        assert names == READ_TOOLS and "/api.html#" in found

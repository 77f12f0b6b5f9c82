"""`docshelf mcp` as a real subprocess, driven by the MCP SDK's own client over stdio and streamable HTTP."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from docshelf.budget.tokens import get_token_counter
from servers import Server
from test_shelf_tools import SPHINX, build_widgets_shelf

READ_TOOLS = ["list_pages", "list_sources", "read_page", "search_docs"]
WRITE_TOOLS = ["add_source", "job_status", "refresh_source", "remove_source"]


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("shelf") / "shelf.db"
    build_widgets_shelf(path)
    return str(path)


def stdio(db: str, *flags: str) -> Client:
    # The whole environment: the server must import the docshelf under test (PYTHONPATH) and use the test's home.
    return Client(StdioServerParameters(command=sys.executable, args=["-m", "docshelf", "--db", db, "mcp", *flags],
                                        env=dict(os.environ)))


def text(result) -> str:
    return "".join(part.text for part in result.content)


def test_stdio_read_tools_search_and_page_through_a_long_page(db: str) -> None:
    async def session() -> None:
        async with stdio(db) as client:
            tools = (await client.list_tools()).tools
            assert sorted(t.name for t in tools) == READ_TOOLS  # no write tools without --allow-write
            descriptions = {t.name: t.description for t in tools}
            assert "cite" in descriptions["search_docs"] and "max_tokens" in descriptions["search_docs"]
            assert "cursor" in descriptions["read_page"] and "around" in descriptions["read_page"]
            counter = get_token_counter()

            found = await client.call_tool("search_docs", {"query": "WIDGETS_CACHE_TTL", "max_tokens": 400})
            assert not found.is_error and counter.count(text(found)) <= 400
            assert "more passages matched" in text(found)
            urls = re.findall(r"<(http[^>]+)>", text(found))
            assert urls[0].split("#")[0].endswith("/configuration.html") and "#" in urls[0]
            assert re.search(r"> · widgets · fetched \d{4}-\d\d-\d\d, changed \d{4}-\d\d-\d\d · chunk", text(found))
            versionless = await client.call_tool("search_docs", {"query": "cache", "source": "widgets",
                                                                 "version": "9.9"})
            assert versionless.is_error and "no version '9.9'" in text(versionless)

            page, cursor, offsets = urls[0].split("#")[0], None, []
            while True:  # follow the cursors to the end of the page, each read within its budget
                args = {"url": page, "max_tokens": 150} | ({"cursor": cursor} if cursor else {})
                window = text(await client.call_tool("read_page", args))
                assert counter.count(window) <= 150
                hint = re.search(r"cursor='(\d+):(\w+)'\)", window)
                if hint is None:
                    assert "[End of page.]" in window
                    break
                cursor = f"{hint.group(1)}:{hint.group(2)}"
                offsets.append(int(hint.group(1)))
            assert offsets == sorted(set(offsets)) and len(offsets) > 2  # several reads, always moving on

            around = text(await client.call_tool("read_page", {"url": urls[0], "around": 1, "max_tokens": 800}))
            assert "#" + urls[0].split("#")[1] in around and counter.count(around) <= 800

            listed = text(await client.call_tool("list_pages", {"source": "widgets", "limit": 2}))
            assert "Pages 1–2 of 4" in listed and "offset=2" in listed
            assert "widgets" in text(await client.call_tool("list_sources", {}))

            unknown = await client.call_tool("search_docs", {"query": "cache", "source": "nope"})
            assert unknown.is_error and "unknown source 'nope'; the shelf holds: widgets" in text(unknown)
            missing = await client.call_tool("read_page", {"url": "http://127.0.0.1:1/missing.html"})
            assert missing.is_error and "Traceback" not in text(missing)

    asyncio.run(session())


def test_stdio_write_tools_run_a_crawl_job_to_completion(db: str, tmp_path: Path) -> None:
    copy = tmp_path / "shelf.db"
    shutil.copy(db, copy)

    async def session(site: str) -> None:
        async with stdio(str(copy), "--allow-write", "--allow-hosts", "127.0.0.1") as client:
            assert sorted(t.name for t in (await client.list_tools()).tools) == sorted(READ_TOOLS + WRITE_TOOLS)
            started = text(await client.call_tool("add_source", {"url": site, "source": "mirror"}))
            job_id = re.search(r"Started job (\w+)", started).group(1)
            deadline = time.monotonic() + 60
            while "**done**" not in (status := text(await client.call_tool("job_status", {"job_id": job_id}))):
                assert "failed" not in status and time.monotonic() < deadline, status
                await asyncio.sleep(0.2)
            assert "4 pages stored" in status
            found = text(await client.call_tool("search_docs", {"query": "tessellate", "source": "mirror"}))
            assert "/api.html#" in found
            assert (await client.call_tool("job_status", {"job_id": "nope"})).is_error
            removed = text(await client.call_tool("remove_source", {"source": "mirror"}))
            assert removed == "Removed source mirror@2.4: 4 pages."

    with Server(SPHINX) as server:
        asyncio.run(session(server.url("/")))


def test_add_source_reads_a_git_repository_at_a_ref(tmp_path: Path) -> None:
    def git(*args: str) -> None:
        subprocess.run(["git", "-c", "user.name=T", "-c", "user.email=t@example.invalid", *args], cwd=tmp_path,
                       check=True, capture_output=True)

    (tmp_path / "work" / "guide").mkdir(parents=True)
    (tmp_path / "work" / "guide" / "tides.md").write_text("# Tides\n\nThe ebb tide runs for six hours.\n")
    (tmp_path / "work" / "notes.md").write_text("# Notes\n\nOutside the docs folder: never read.\n")
    git("init", "-q", "--bare", "tides.git")
    git("init", "-q", "work")
    git("-C", "work", "add", "-A")
    git("-C", "work", "commit", "-q", "-m", "docs")
    git("-C", "work", "tag", "v1")
    git("-C", "work", "rm", "-q", "guide/tides.md")
    git("-C", "work", "commit", "-q", "-m", "gone after v1")
    git("-C", "work", "push", "-q", str(tmp_path / "tides.git"), "HEAD:refs/heads/main", "--tags")

    async def session() -> None:
        async with stdio(str(tmp_path / "shelf.db"), "--allow-write", "--allow-folder", str(tmp_path)) as client:
            started = await client.call_tool("add_source", {"url": str(tmp_path / "tides.git"), "source": "tides",
                                                            "ref": "v1", "docs_path": "guide", "render": "never"})
            job_id = re.search(r"Started job (\w+)", text(started)).group(1)
            deadline = time.monotonic() + 60
            while "**done**" not in (status := text(await client.call_tool("job_status", {"job_id": job_id}))):
                assert "failed" not in status and time.monotonic() < deadline, status
                await asyncio.sleep(0.2)
            found = text(await client.call_tool("search_docs", {"query": "ebb tide", "source": "tides"}))
            assert "six hours" in found  # the file as it was at v1, from the docs folder only
            assert "never read" not in text(await client.call_tool("search_docs", {"query": "outside docs folder"}))

    asyncio.run(session())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_streamable_http_serves_the_same_tools(db: str) -> None:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "docshelf", "--db", db, "mcp", "--http", "--port", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert process.poll() is None and time.monotonic() < deadline, process.stderr.read().decode()
                time.sleep(0.1)

        async def session() -> None:
            async with Client(f"http://127.0.0.1:{port}/mcp") as client:
                assert sorted(t.name for t in (await client.list_tools()).tools) == READ_TOOLS
                found = text(await client.call_tool("search_docs", {"query": "clamp_load"}))
                assert "/quickstart.html#" in found

        asyncio.run(session())
    finally:
        process.terminate()
        process.wait(timeout=10)
        process.stderr.close()

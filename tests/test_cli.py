"""The CLI contract: commands, --json shapes, exit codes, and an interrupted add that resumes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from docshelf.cli import cli
from docshelf.store.sqlite import SQLiteStore
from servers import Reply, Server
from test_ingest import TOPICS, write_site

SUMMARY_KEYS = {"source", "pages_ok", "pages_failed", "pages_skipped", "pages_unchanged", "chunks", "embedded",
                "seconds", "failures"}
HIT_KEYS = {"url", "source", "version", "fetched_at", "changed_at", "chunk_number", "title", "summary", "heading_path",
            "content", "score"}


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def served(tmp_path: Path):
    write_site(tmp_path / "www")
    with Server(tmp_path / "www") as server:
        yield server


@pytest.fixture
def shelf(served: Server, db_path: Path) -> str:
    code, out, _ = run("--db", str(db_path), "add", served.url("/docs/"), "--source", "widgets", "--json")
    assert code == 0, out
    return str(db_path)


def test_add_json_summary(shelf: str) -> None:
    code, out, _ = run("--db", shelf, "sources", "--json")
    assert code == 0
    [source] = json.loads(out)
    assert source["name"] == "widgets" and source["pages"] == 6 and source["embedded"] == source["chunks"] > 0


def test_add_summary_shape_and_unchanged_rerun(served: Server, shelf: str) -> None:
    code, out, _ = run("--db", shelf, "add", served.url("/docs/"), "--source", "widgets", "--json")
    summary = json.loads(out)
    assert code == 0 and SUMMARY_KEYS <= set(summary)
    assert summary["pages_unchanged"] == 6 and summary["pages_ok"] == 0 and summary["embedded"] == 0


def test_search_json_hits_carry_the_contract_fields(shelf: str) -> None:
    code, out, _ = run("--db", shelf, "search", "send a bearer token", "-k", "3", "--json")
    hits = json.loads(out)
    assert code == 0 and 1 <= len(hits) <= 3 and HIT_KEYS == set(hits[0])
    assert "/docs/authentication.html#" in hits[0]["url"]
    for mode in ("bm25", "vector"):
        code, out, _ = run("--db", shelf, "search", "bearer token Authorization header", "--mode", mode, "--json")
        assert "/docs/authentication.html" in json.loads(out)[0]["url"]


def test_search_batch(shelf: str, tmp_path: Path) -> None:
    batch = tmp_path / "q.jsonl"
    batch.write_text('{"id": "a", "question": "install with pip"}\n{"id": "b", "question": "test client"}\n')
    code, out, _ = run("--db", shelf, "search", "--batch", str(batch), "-k", "2", "--json")
    lines = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [line["id"] for line in lines] == ["a", "b"]
    assert "installation.html" in lines[0]["hits"][0]["url"] and "testing.html" in lines[1]["hits"][0]["url"]


def test_pages_show_rm(served: Server, shelf: str) -> None:
    code, out, _ = run("--db", shelf, "pages", "widgets", "--limit", "2", "--offset", "1", "--json")
    listing = json.loads(out)
    assert code == 0 and listing["total"] == 6 and len(listing["pages"]) == 2
    url = served.url("/docs/streaming.html")
    code, out, _ = run("--db", shelf, "show", url, "--chunk", "0", "--json")
    page = json.loads(out)
    assert code == 0 and page["chunks"][0]["chunk_number"] == 0 and "Stream a large response" in page["chunks"][0]["content"]
    code, out, _ = run("--db", shelf, "show", url + "#example", "--json")
    assert code == 0 and len(json.loads(out)["chunks"]) >= 1
    code, out, _ = run("--db", shelf, "rm", "widgets", "--json")
    assert code == 0 and json.loads(out) == {"source": "widgets", "pages_removed": 6}
    code, out, _ = run("--db", shelf, "sources", "--json")
    assert json.loads(out) == []


def test_show_max_tokens_reads_the_page_with_cursors(served: Server, shelf: str) -> None:
    from docshelf.budget.tokens import get_token_counter

    url, cursor, text, calls = served.url("/docs/streaming.html"), None, "", 0
    markdown = SQLiteStore(shelf).get_page_markdown(url)
    while True:
        code, out, _ = run("--db", shelf, "show", url, "--max-tokens", "100", "--json", *(["--cursor", cursor] if cursor else []))
        part = json.loads(out)
        assert code == 0 and part["tokens"] <= 100 and get_token_counter().count(part["content"]) < 100
        text, cursor, calls = text + (markdown.encode()[part["start"]:part["end"]]).decode(), part["cursor"], calls + 1
        if cursor is None:
            break
    assert text == markdown and calls > 1
    code, out, err = run("--db", shelf, "show", url, "--max-tokens", "100")
    assert code == 0 and out.strip() and "--cursor" in err
    code, _, err = run("--db", shelf, "show", url, "--max-tokens", "100", "--cursor", "12:nothash0")
    assert code == 2 and "changed since cursor" in err
    code, _, err = run("--db", shelf, "show", url, "--chunk", "0", "--max-tokens", "100")
    assert code == 2 and "--chunk shows one chunk" in err


def test_human_output(shelf: str) -> None:
    code, out, _ = run("--db", shelf, "search", "configure retries and timeouts", "-k", "2")
    assert code == 0 and "Configuration" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["search", "x", "--source", "nope"], "unknown source 'nope'"),
        (["show", "http://127.0.0.1:9/none.html"], "no page"),
        (["pages", "nope"], "unknown source"),
        (["search"], "either a QUERY or --batch"),
    ],
)
def test_usage_errors_exit_2(shelf: str, args: list[str], message: str) -> None:
    code, _, err = run("--db", shelf, *args)
    assert code == 2 and message in err


def test_bad_db_path_exits_2(tmp_path: Path) -> None:
    code, _, err = run("--db", str(tmp_path / "no" / "such" / "shelf.db"), "sources")
    assert code == 2 and "does not exist" in err


def test_unreachable_start_url_exits_2(db_path: Path) -> None:
    code, _, err = run("--db", str(db_path), "add", "http://127.0.0.1:9/docs/", "--json")
    assert code == 2 and "cannot reach" in err


def test_shelf_of_another_model_exits_2(shelf: str, served: Server) -> None:
    code, _, err = run("--db", shelf, "--embedder", "openai:text-embedding-3-small", "add", served.url("/docs/"))
    assert code == 2 and "local:all-MiniLM-L6-v2" in err


def test_failed_pages_exit_1(tmp_path: Path, db_path: Path) -> None:
    write_site(tmp_path / "www", TOPICS[:1])
    (tmp_path / "www" / "docs" / "index.html").write_text(
        '<html><body><main><h1>Index</h1><p>Start at the installation page or the gone page.</p>'
        '<a href="installation.html">i</a> <a href="gone.html">g</a></main></body></html>'
    )
    with Server(tmp_path / "www") as server:
        code, out, _ = run("--db", str(db_path), "add", server.url("/docs/"), "--json")
    summary = json.loads(out)
    assert code == 1 and summary["pages_failed"] == 1 and summary["failures"][0]["url"].endswith("gone.html")


def test_local_folder(tmp_path: Path, db_path: Path) -> None:
    docs = Path(__file__).resolve().parent.parent / "docs"
    code, out, _ = run("--db", str(db_path), "add", str(docs), "--source", "own", "--json")
    summary = json.loads(out)
    assert code == 0 and summary["pages_ok"] >= 4
    code, out, _ = run("--db", str(db_path), "search", "how do I refresh a source", "-k", "1", "--json")
    assert json.loads(out)[0]["url"].startswith((docs / "refresh.md").as_uri())


def test_kill_9_during_add_then_resume_without_duplicates(tmp_path: Path, db_path: Path) -> None:
    topics = [(f"topic{i:02d}", f"Topic number {i} explains feature {i} with details about option{i}.") for i in range(40)]
    write_site(tmp_path / "www", topics)
    with Server(tmp_path / "www") as server:
        for i in range(40):  # slow pages, so the kill lands mid-crawl
            server.route(f"/docs/topic{i:02d}.html", Reply.html(
                (tmp_path / "www" / "docs" / f"topic{i:02d}.html").read_text(), delay=0.15))
        cmd = [sys.executable, "-m", "docshelf", "--db", str(db_path), "add", server.url("/docs/"),
               "--source", "many", "--concurrency", "2", "--json"]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ.copy())
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and _stored_pages(db_path) < 8:
            time.sleep(0.1)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        stored_before = _stored_pages(db_path)
        assert 8 <= stored_before < 41, "the kill should land mid-crawl"
        finished = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    summary = json.loads(finished.stdout)
    assert finished.returncode == 0, finished.stderr
    assert summary["pages_unchanged"] + summary["pages_ok"] == 41
    store = SQLiteStore(db_path)
    rows = store.conn.execute("SELECT url, count(*), max(chunk_number) FROM chunks GROUP BY url").fetchall()
    assert len(rows) == 41 and all(count == top + 1 for _, count, top in rows)
    [stats] = store.list_sources()
    assert stats.embedded == stats.chunks


def _stored_pages(db_path: Path) -> int:
    if not db_path.exists():
        return 0
    try:
        store = SQLiteStore(db_path)
        try:
            return store.count_pages("many")
        finally:
            store.close()
    except Exception:
        return 0

"""`docshelf copy`: SQLite → PostgreSQL → SQLite keeps every source, page, chunk, hash and vector bit for bit."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from docshelf.cli import cli
from docshelf.errors import ConfigError, ModelMismatchError
from docshelf.models import Page, Source
from docshelf.records import export_records, import_records
from docshelf.store.base import Store
from docshelf.ingest import attach_inbound_text
from docshelf.transfer import chunk_access, copy_shelf, stored_chunks
from store import shelves
from store.shelves import make_page, open_shelf, unit

pg_dsn = shelves.pg_dsn  # fixture shared with tests/store

EXACT_RECORD = """---
url: http://records.test/exact
session_id: imported
chunk_number: 0
title: Exact
summary: float64 digits
embedding: [0.1, 0.2, 0.30000000000000004, 0.4, 0.5, 0.6, 0.7, 0.8]
metadata : {"source":"imported"}
updated_dt: 2025-01-01T00:00:00
---
kept as written"""


def fill(store: Store, tmp_path: Path) -> None:
    """Give a shelf two crawled sources (vectors, pending chunks, failed pages) and one imported record."""
    store.bind_embedder("test:model", 8)
    store.upsert_source(Source(name="s1", root="http://example.test/", options={"max_pages": 5, "include": ["*"]},
                               last_crawl_at="2025-01-02T00:00:00+00:00"))
    store.upsert_source(Source(name="s2", root="http://other.test/"))
    for p in range(7):
        texts = [f"page {p} chunk {i}" for i in range(3)]
        if p == 1:
            texts[0] += " — see [caching](http://example.test/p0#sec-1)"
        page, chunks, hashes = make_page(f"http://example.test/p{p}", texts)
        store.replace_page(page, chunks, hashes)
        store.store_embeddings({h: unit(p * 10 + i) for i, h in enumerate(hashes[:2])})  # the third stays pending
    page, chunks, hashes = make_page("http://other.test/kept", ["old text"], source="s2")
    store.replace_page(page, chunks, hashes)
    store.record_failure(Page(url=page.url, source="s2", title="", markdown="", content_hash="", status="failed",
                              error="HTTP 500"))
    store.record_failure(Page(url="http://other.test/robots", source="s2", title="", markdown="", content_hash="",
                              status="skipped", error="robots.txt"))
    records = tmp_path / "exact.txt"
    records.write_text(EXACT_RECORD)
    assert import_records(store, [records], model="test:model").errors == []
    attach_inbound_text(store, "s1")


def snapshot(store: Store) -> dict:
    """Return everything a copy must keep, in comparable form (vectors as raw float32 bytes)."""
    access = chunk_access(store)
    shelf: dict = {"identity": store.embedder_identity(), "sources": [], "pages": {}}
    for stats in store.list_sources():
        shelf["sources"].append((stats.source, stats.pages, stats.pages_failed, stats.pages_skipped, stats.chunks,
                                 stats.embedded))
        for url, info in sorted(store.page_states(stats.source.name).items()):
            chunks = stored_chunks(access, url)
            shelf["pages"][url] = (info, store.get_page_markdown(url), [
                (c.chunk, c.embed_hash, None if c.vector is None else c.vector.tobytes(), c.texts) for c in chunks])
    return shelf


def test_copy_both_ways_keeps_everything(tmp_path: Path, pg_dsn: str) -> None:
    original = open_shelf(str(tmp_path / "a.db"))
    fill(original, tmp_path)
    server = open_shelf(pg_dsn)
    back = open_shelf(str(tmp_path / "b.db"))
    try:
        summary = copy_shelf(original, server)
        assert summary.to_json() == {"sources": 3, "pages": 10, "chunks": 23, "vectors": 15}
        copy_shelf(server, back)
        before = snapshot(original)
        assert snapshot(server) == before
        assert snapshot(back) == before
        # vectors arrive bit for bit and search the same
        vector = unit(31)
        assert [_key(server, i) for i, _ in server.search_vector(vector, limit=3)] == [
            _key(original, i) for i, _ in original.search_vector(vector, limit=3)]
        # inbound link text is made again from the copied pages: p1 (whose body says "caching")
        # links to p0#sec-1 as "caching", so p0's chunk 1 matches too
        for store in (original, server, back):
            assert sorted(_key(store, i) for i, _ in store.search_bm25("caching")) == [
                ("http://example.test/p0", 1), ("http://example.test/p1", 0)]
        assert {h for h, _ in back.pending_embeddings(limit=100)} == {h for h, _ in original.pending_embeddings(limit=100)}
        exported = [io.BytesIO(), io.BytesIO()]
        export_records(original, exported[0])
        export_records(back, exported[1])
        assert exported[0].getvalue() == exported[1].getvalue()
        assert EXACT_RECORD.encode() in exported[1].getvalue()
    finally:
        for store in (original, server, back):
            store.close()


def _key(store: Store, chunk_id: int) -> tuple[str, int]:
    chunk = store.chunks_by_id([chunk_id])[chunk_id]
    return chunk.url, chunk.chunk_number


def test_copy_refuses_a_shelf_of_another_model_before_writing(tmp_path: Path, pg_dsn: str) -> None:
    src = open_shelf(str(tmp_path / "a.db"))
    fill(src, tmp_path)
    dst = open_shelf(pg_dsn)
    try:
        dst.bind_embedder("other:model", 384)
        with pytest.raises(ModelMismatchError, match="test:model"):
            copy_shelf(src, dst)
        assert dst.list_sources() == []
        with pytest.raises(ConfigError, match="same shelf"):
            copy_shelf(src, src)
    finally:
        src.close()
        dst.close()


def test_cli_copy_to_postgres_and_back(tmp_path: Path, pg_dsn: str) -> None:
    src = tmp_path / "a.db"
    shelf = open_shelf(str(src))
    fill(shelf, tmp_path)
    shelf.close()
    runner = CliRunner()
    result = runner.invoke(cli, ["--db", str(src), "copy", "--to", pg_dsn, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["chunks"] == 23
    result = runner.invoke(cli, ["copy", "--from", pg_dsn, "--to", str(tmp_path / "c.db")])
    assert result.exit_code == 0, result.output
    assert "copied 3 sources, 10 pages, 23 chunks (15 with vectors)" in result.stdout
    copied = open_shelf(str(tmp_path / "c.db"))
    [(chunk_id, similarity)] = copied.search_vector(unit(0), limit=1)
    assert _key(copied, chunk_id) == ("http://example.test/p0", 0) and similarity == pytest.approx(1.0, abs=1e-6)
    assert np.array_equal(stored_chunks(chunk_access(copied), "http://example.test/p0")[0].vector, unit(0))
    copied.close()

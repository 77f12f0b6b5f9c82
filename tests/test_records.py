"""The record format and JSONL: byte-exact round trips through both shelves, bad records, CLI import/export."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from docshelf.cli import cli
from docshelf.errors import ConfigError
from docshelf.models import Source
from docshelf.records import (
    DuplicateRecordError,
    RecordDimensionError,
    RecordFormatError,
    RecordJSONError,
    RecordModelError,
    export_records,
    import_records,
    read_record_file,
    read_records,
)
from docshelf.search import HybridSearcher
from store import shelves
from store.shelves import open_shelf

pg_dsn = shelves.pg_dsn  # fixtures shared with tests/store
shelf_location = shelves.shelf_location

SEED = Path(__file__).parent / "store" / "seed" / "record-example.txt"
SEED_URL = "https://ai.pydantic.dev/api/agent/"


def record(url: str, number: int, content: str, *, embedding: str = "null", metadata: str = '{"source": "s"}',
           session: str = "s", extra: str = "", title: str = "T", updated: str = "2025-03-14T10:14:19.386694") -> str:
    """Return the text of one record (no final newline), the way the origin's files are laid out."""
    return (f"---\nurl: {url}\nsession_id: {session}\nchunk_number: {number}\ntitle: {title}\nsummary: S {number}\n"
            f"embedding: {embedding}\nmetadata : {metadata}\nupdated_dt: {updated}\n{extra}---\n{content}")


def export_bytes(store, **options) -> bytes:
    out = io.BytesIO()
    export_records(store, out, **options)
    return out.getvalue()


def test_seed_round_trips_byte_for_byte(shelf_location: str, tmp_path: Path) -> None:
    store = open_shelf(shelf_location)
    try:
        [refused] = import_records(store, [SEED]).errors  # the file does not say which model made its vectors
        assert isinstance(refused, RecordModelError) and str(refused).startswith(f"{SEED}:1: the 1536-dim embedding")
        assert "--model (perhaps openai:text-embedding-3-small)" in str(refused) and "--reembed" in str(refused)
        assert store.embedder_identity() is None and store.get_page(SEED_URL) is None
        summary = import_records(store, [SEED], model="openai:text-embedding-3-small")
        assert (summary.records, summary.errors, summary.model) == (1, [], "openai:text-embedding-3-small")
        assert store.embedder_identity() == ("openai:text-embedding-3-small", 1536)
        [chunk] = store.get_chunks(SEED_URL)
        assert (chunk.source, chunk.chunk_number, chunk.title) == ("pydantic_ai_docs", 21, "Run Function Parameters")
        assert list(chunk.metadata) == ["source", "crawled_at", "url_path", "chunk_size"]
        assert chunk.metadata["chunk_size"] == len(chunk.content) == 3386
        out = tmp_path / "out.txt"
        assert export_records(store, out, url=SEED_URL) == 1
        assert out.read_bytes() == SEED.read_bytes()
    finally:
        store.close()


def test_seed_round_trips_through_the_cli(shelf_location: str, tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["--db", shelf_location, "import", str(SEED), "--model", "openai:text-embedding-3-small"])
    assert result.exit_code == 0, result.output
    assert "openai:text-embedding-3-small" in result.output and "--mode bm25" in result.output
    out = tmp_path / "exported.txt"
    result = runner.invoke(cli, ["--db", shelf_location, "export", "--url", SEED_URL, "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == SEED.read_bytes()
    result = runner.invoke(cli, ["--db", shelf_location, "export", "--source", "pydantic_ai_docs"])
    assert result.stdout_bytes == SEED.read_bytes()


def test_an_imported_openai_shelf_searches_by_bm25(tmp_path: Path) -> None:
    store = open_shelf(str(tmp_path / "shelf.db"))
    import_records(store, [SEED], model="openai:text-embedding-3-small")
    searcher = HybridSearcher(store, lambda: pytest.fail("bm25 needs no embedder"))
    [hit] = searcher.search("message_history model_settings", mode="bm25", k=1)
    assert (hit.page_url, hit.chunk_number) == (SEED_URL, 21)
    store.close()


def test_several_records_round_trip(shelf_location: str, tmp_path: Path) -> None:
    vector = "[" + ", ".join(repr(float(np.float32(x))) for x in (0.5, -0.25, 0.125, 0.1, 0.2, 0.3, 0.4, 0.6)) + "]"
    records = [
        record("http://a.test/one", 0, "ends with a newline\n", embedding=vector),
        record("http://a.test/one", 1, "", embedding=vector.replace("0.5", "0.75")),
        record("http://a.test/one", 2, "a rule\n---\nnot a new record\n---"),
        record("http://a.test/two", 0, "crlf\r\nlines\r\n", extra='heading_path: ["Guide", "Install"]\nanchor: install\n'
               'sections: [[0, "install", ["Guide", "Install"]], [6, "lines", ["Guide", "Install", "Lines"]]]\n'),
        record("http://b.test/x", 0, "other source, no trailing newline", session="t",
               metadata='{"source": "t", "crawled_at": "2025-01-15T13:58:45.123456+00:00", "url_path": "/x", "chunk_size": 33}'),
    ]
    text = "\n".join(records)
    source = tmp_path / "records.txt"
    source.write_bytes(text.encode())
    store = open_shelf(shelf_location)
    try:
        store.bind_embedder("test:model", 8)
        summary = import_records(store, [source], model="test:model")
        assert (summary.records, summary.pages, summary.errors) == (5, 3, [])
        packed = store.get_chunks("http://a.test/two")[0]
        assert packed.heading_path == ["Guide", "Install"]
        assert packed.cite_urls == ["http://a.test/two#install", "http://a.test/two#lines"]
        assert export_bytes(store) == text.encode()
        jsonl = json.loads(export_bytes(store, fmt="jsonl").decode().splitlines()[3])
        assert jsonl["sections"][1] == [6, "lines", ["Guide", "Install", "Lines"]]
    finally:
        store.close()


def test_texts_the_values_cannot_reproduce_are_kept(shelf_location: str, tmp_path: Path) -> None:
    # float64 digits beyond float32, integers, compact or unicode JSON: all kept as written
    texts = [
        record("http://a.test/p", 0, "x", embedding="[0.1, 0.2, 0.30000000000000004, 1, 0, 0, 0, 0.5]"),
        record("http://a.test/p", 1, "y", embedding="[1,0,0,0,0,0,0,0]", metadata='{"source":"s","title":"café"}'),
    ]
    source = tmp_path / "exact.txt"
    source.write_bytes("\n".join(texts).encode())
    store = open_shelf(shelf_location)
    try:
        store.bind_embedder("test:model", 8)
        assert import_records(store, [source], model="test:model").errors == []
        assert export_bytes(store) == source.read_bytes()
        # the chunk's own text is kept only while it matches: a changed chunk exports its new values
        single = tmp_path / "changed.txt"
        single.write_bytes(record("http://a.test/p", 1, "y", embedding="[0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]").encode())
        import_records(store, [single], model="test:model")
        assert export_bytes(store).decode().endswith(single.read_text())
    finally:
        store.close()


def test_jsonl_round_trips_and_converts_back_to_records(shelf_location: str, tmp_path: Path) -> None:
    store = open_shelf(shelf_location)
    second = open_shelf(str(tmp_path / "second.db"))
    try:
        import_records(store, [SEED], model="openai:text-embedding-3-small")
        jsonl = tmp_path / "seed.jsonl"
        export_records(store, jsonl, fmt="jsonl")
        line = json.loads(jsonl.read_bytes())
        assert line["session_id"] == "pydantic_ai_docs" and len(line["embedding"]) == 1536
        assert import_records(second, [jsonl], model="openai:text-embedding-3-small").errors == []
        assert export_bytes(second, fmt="jsonl") == jsonl.read_bytes()
        assert export_bytes(second) == SEED.read_bytes()
    finally:
        store.close()
        second.close()


def test_records_of_a_page_merge_with_the_chunks_it_has(shelf_location: str, tmp_path: Path) -> None:
    first, second = tmp_path / "1.txt", tmp_path / "2.txt"
    first.write_text("\n".join([record("http://a.test/p", 0, "zero"), record("http://a.test/q", 0, "other page"),
                                record("http://a.test/p", 2, "two")]))
    second.write_text(record("http://a.test/p", 1, "one") + "\n" + record("http://a.test/p", 2, "two, again"))
    store = open_shelf(shelf_location)
    try:
        assert import_records(store, [first]).records == 3
        assert import_records(store, [second], source="renamed").records == 2
        assert [c.content for c in store.get_chunks("http://a.test/p")] == ["zero", "one", "two, again"]
        assert {c.source for c in store.get_chunks("http://a.test/p")} == {"renamed"}
        assert store.get_page("http://a.test/p").source == "renamed"
        assert store.get_page_markdown("http://a.test/p") == "zero\n\none\n\ntwo, again"
    finally:
        store.close()


def test_bad_records_are_reported_with_file_and_line_and_skipped(shelf_location: str, tmp_path: Path) -> None:
    good = "[" + ", ".join(["0.5"] * 8) + "]"
    parts = [
        record("http://a.test/good", 0, "good one", embedding=good),              # lines 1-11
        record("http://a.test/bad", 0, "no closing rule").replace("---\nno", "no"),  # 12-21: header not closed (line 21)
        record("http://a.test/bad", 1, "x").replace("title: T\n", ""),           # 22-31: no title
        record("http://a.test/bad", 2, "x", embedding="[0.1, oops]"),            # 32-42: embedding not JSON
        record("http://a.test/bad", 3, "x", metadata="{source: s}"),             # 43-53: metadata not JSON
        record("http://a.test/bad", 4, "x", embedding="[0.5, 0.5, 0.5]"),        # 54-64: 3 dims, shelf has 8
        record("http://a.test/good", 0, "duplicate", embedding=good),            # 65-75: duplicate
        record("http://a.test/bad", 5, "x").replace("chunk_number: 5", "chunk_number: five"),  # 76-86
        record("http://a.test/good", 1, "good two"),                             # 87-97
    ]
    source = tmp_path / "mixed.txt"
    source.write_bytes("\n".join(parts).encode())
    store = open_shelf(shelf_location)
    try:
        store.bind_embedder("test:model", 8)
        store.upsert_source(Source(name="s", root="http://a.test/"))
        summary = import_records(store, [source], model="test:model")
        found = [(type(e), e.line) for e in summary.errors]
        assert found == [
            (RecordFormatError, 21), (RecordFormatError, 22), (RecordJSONError, 38), (RecordJSONError, 50),
            (RecordDimensionError, 54), (DuplicateRecordError, 65), (RecordFormatError, 79),
        ]
        assert all(str(e).startswith(f"{source}:{e.line}: ") for e in summary.errors)
        assert summary.records == 2
        assert [c.content for c in store.get_chunks("http://a.test/good")] == ["good one", "good two"]
        assert store.get_page("http://a.test/bad") is None
    finally:
        store.close()


def test_cli_import_lists_bad_records_and_exits_1(tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text(record("http://a.test/x", 0, "no title").replace("title: T\n", "") + "\n"
                   + record("http://a.test/x", 1, "fine"))
    notes = tmp_path / "notes.md"
    notes.write_text("# notes\n")
    result = CliRunner().invoke(cli, ["--db", str(tmp_path / "s.db"), "import", str(bad), str(notes)])
    assert result.exit_code == 1
    assert f"{bad}:1: record has no title field" in result.stderr
    assert f"{notes}:1: neither a record file" in result.stderr
    assert "imported 1 records" in result.stdout


def test_a_vector_whose_model_is_not_named_is_refused_not_guessed(tmp_path: Path) -> None:
    source = tmp_path / "r.txt"
    source.write_text(record("http://a.test/x", 0, "x", embedding="[0.6, 0.8]"))
    store = open_shelf(str(tmp_path / "s.db"))
    [error] = import_records(store, [source]).errors
    assert isinstance(error, RecordModelError) and "--model" in str(error) and "--reembed" in str(error)
    assert store.embedder_identity() is None
    store.bind_embedder("local:all-MiniLM-L6-v2", 2)  # a shelf with a model does not lend it to the record either
    [error] = import_records(store, [source]).errors
    assert isinstance(error, RecordModelError)
    store.close()


def test_a_record_of_another_model_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "r.txt"
    source.write_text(record("http://a.test/x", 0, "x", embedding="[0.6, 0.8]", extra="embedding_model: test:a\n"))
    store = open_shelf(str(tmp_path / "s.db"))
    store.bind_embedder("test:b", 2)
    [error] = import_records(store, [source]).errors
    assert isinstance(error, RecordModelError) and "is of test:a; this shelf holds vectors of test:b" in str(error)
    [error] = import_records(store, [source], model="test:c").errors
    assert "embedding_model test:a is not --model test:c" in str(error)
    [error] = import_records(store, [source], model="test:b").errors  # --model does not override what a record says
    assert isinstance(error, RecordModelError)
    wrong_size = tmp_path / "w.txt"
    wrong_size.write_text(record("http://a.test/y", 0, "y", embedding="[0.6, 0.8, 0.0]", extra="embedding_model: test:b\n"))
    [error] = import_records(store, [wrong_size]).errors
    assert isinstance(error, RecordDimensionError)
    assert store.get_page("http://a.test/x") is None and store.get_page("http://a.test/y") is None
    store.close()


def test_an_export_names_the_model_and_imports_without_being_told(tmp_path: Path) -> None:
    source = tmp_path / "r.txt"
    source.write_text(record("http://a.test/x", 0, "x", embedding="[0.6, 0.8]"))
    store = open_shelf(str(tmp_path / "s.db"))
    store.bind_embedder("test:model", 2)
    page, chunks, hashes, crawled_source = _crawled_page()
    store.upsert_source(crawled_source)
    store.replace_page(page, chunks, hashes)
    store.store_embeddings({"h0": np.asarray([0.6, 0.8], dtype=np.float32)})
    exported = export_bytes(store)
    assert b"\nembedding_model: test:model\n" in exported
    assert json.loads(export_bytes(store, fmt="jsonl"))["embedding_model"] == "test:model"
    store.close()
    again = tmp_path / "again.txt"
    again.write_bytes(exported)
    other = open_shelf(str(tmp_path / "other.db"))
    summary = import_records(other, [again])  # no --model: the file says
    assert summary.errors == [] and other.embedder_identity() == ("test:model", 2)
    assert export_bytes(other) == exported
    other.close()


def _crawled_page():
    from docshelf.models import Chunk, Page

    page = Page(url="http://a.test/crawled", source="s", title="T", markdown="crawled text", content_hash="c")
    chunk = Chunk(url=page.url, source="s", chunk_number=0, title="T", summary="S", content="crawled text",
                  metadata={"source": "s"}, updated_dt="2025-01-01T00:00:00")
    store_source = Source(name="s", root="http://a.test/")
    return page, [chunk], ["h0"], store_source


def test_folders_are_read_recursively_and_other_files_reported(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text(record("http://a.test/1", 0, "one"))
    (folder / "sub" / "b.jsonl").write_text(json.dumps({
        "url": "http://a.test/2", "session_id": "s", "chunk_number": 0, "title": "T", "summary": "S",
        "embedding": None, "metadata": {}, "updated_dt": None, "content": "two"}) + "\n")
    (folder / "notes.md").write_text("# just notes\n")
    (folder / ".hidden").write_text("ignored")
    items = list(read_records([folder]))
    assert [getattr(i, "chunk", None) and i.chunk.content for i in items] == ["one", None, "two"]
    assert isinstance(items[1], RecordFormatError) and items[1].path.endswith("notes.md")


def test_the_reader_streams(tmp_path: Path) -> None:
    source = tmp_path / "many.txt"
    source.write_text("\n".join(record("http://a.test/p", n, f"chunk {n}\n" * 50) for n in range(2000)))
    with source.open("rb") as fp:
        first = next(read_record_file(fp, str(source)))
        assert first.chunk.chunk_number == 0
        assert fp.tell() < source.stat().st_size / 20


def test_export_to_a_folder(tmp_path: Path) -> None:
    store = open_shelf(str(tmp_path / "s.db"))
    import_records(store, [SEED], model="openai:text-embedding-3-small")
    out = tmp_path / "out"
    out.mkdir()
    assert export_records(store, out) == 1
    [page_file] = (out).rglob("*.txt")
    assert page_file.parent.name.startswith("pydantic_ai_docs") and page_file.read_bytes() == SEED.read_bytes()
    assert export_records(store, out, fmt="jsonl") == 1
    assert len(list(out.glob("*.jsonl"))) == 1
    with pytest.raises(ConfigError, match="no source 'nope'"):
        export_records(store, out, source="nope")
    store.close()


class FakeEmbedder:
    """An 8-dim embedder whose vectors depend only on the text."""

    model_id = "test:fake"
    dim = 8
    max_tokens = 512

    def embed_documents(self, texts):
        return np.stack([self.embed_query(t) for t in texts])

    def embed_query(self, text):
        v = np.random.default_rng(abs(hash(text)) % 2**32).standard_normal(8).astype(np.float32)
        return v / np.linalg.norm(v)

    def count_tokens(self, text):
        return len(text.split())


def test_reembed_replaces_the_records_vectors(tmp_path: Path) -> None:
    pytest.importorskip("docshelf.ingest", reason="--reembed embeds through the ingest pipeline's text")
    store = open_shelf(str(tmp_path / "s.db"))
    summary = import_records(store, [SEED], reembed=True, embedder=FakeEmbedder)
    assert (summary.records, summary.embedded, summary.model) == (1, 1, "test:fake")
    assert store.embedder_identity() == ("test:fake", 8)
    assert store.pending_embeddings() == []
    store.close()


def test_malformed_sections_name_the_file_and_line(shelf_location: str, tmp_path: Path) -> None:
    source = tmp_path / "sections.txt"
    source.write_bytes(record("http://a.test/s", 0, "x", extra='sections: [[0, 7, "not a path"]]\n').encode())
    store = open_shelf(shelf_location)
    try:
        store.bind_embedder("test:model", 8)
        (error,) = import_records(store, [source]).errors
        assert isinstance(error, RecordJSONError) and error.line == 10 and "sections must be" in str(error)
        assert store.get_page("http://a.test/s") is None
    finally:
        store.close()

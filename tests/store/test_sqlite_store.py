"""The SQLite shelf on real files: schema, atomic page replacement, vectors by hash, search."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import numpy as np
import pytest

from docshelf.errors import ModelMismatchError, StoreError
from docshelf.models import Chunk, Page, Source
from docshelf.store.fts import match_expression, query_terms
from docshelf.store.sqlite import SQLiteStore, identifier_parts

DIM = 8


def unit(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
    return v / np.linalg.norm(v)


def make_page(url: str, texts: list[str], source: str = "s1", title: str = "Page") -> tuple[Page, list[Chunk], list[str]]:
    page = Page(url=url, source=source, title=title, markdown="\n\n".join(texts), content_hash=str(hash(tuple(texts))))
    chunks = [
        Chunk(url=url, source=source, chunk_number=i, title=f"{title} {i}", summary=t[:20], content=t,
              heading_path=[title, f"Section {i}"], anchor=f"sec-{i}",
              metadata={"source": source, "crawled_at": page.fetched_at, "url_path": "/x", "chunk_size": len(t)})
        for i, t in enumerate(texts)
    ]
    return page, chunks, [f"h:{t}" for t in texts]


@pytest.fixture
def store(db_path: Path):
    s = SQLiteStore(db_path)
    s.bind_embedder("test:model", DIM)
    s.upsert_source(Source(name="s1", root="http://example.test/"))
    s.upsert_source(Source(name="s2", root="http://other.test/"))
    yield s
    s.close()


def test_wal_file_appears_and_schema_is_recorded(store: SQLiteStore, db_path: Path) -> None:
    page, chunks, hashes = make_page("http://example.test/a", ["alpha text"])
    store.replace_page(page, chunks, hashes)
    assert Path(str(db_path) + "-wal").exists()
    names = [r[0] for r in store.conn.execute("SELECT name FROM migrations")]
    assert names == ["m001_initial"]


def test_reopen_keeps_identity_and_refuses_another_model(store: SQLiteStore, db_path: Path) -> None:
    store.close()
    again = SQLiteStore(db_path)
    assert again.embedder_identity() == ("test:model", DIM)
    again.bind_embedder("test:model", DIM)  # same model: fine
    with pytest.raises(ModelMismatchError, match="test:model"):
        again.bind_embedder("other:model", 384)


def test_replace_page_never_duplicates(store: SQLiteStore) -> None:
    page, chunks, hashes = make_page("http://example.test/a", ["one", "two", "three"])
    assert store.replace_page(page, chunks, hashes) == 3
    page, chunks, hashes = make_page("http://example.test/a", ["one", "two"])
    store.replace_page(page, chunks, hashes)
    got = store.get_chunks("http://example.test/a")
    assert [c.content for c in got] == ["one", "two"]
    assert store.conn.execute("SELECT count(*) FROM chunks_fts").fetchone()[0] == 2


def test_vectors_are_reused_by_hash_when_text_moves(store: SQLiteStore) -> None:
    page, chunks, hashes = make_page("http://example.test/a", ["first", "second"])
    store.replace_page(page, chunks, hashes)
    assert store.store_embeddings({"h:first": unit(1), "h:second": unit(2)}) == 2
    # an edit inserts a chunk before: "second" moves from chunk 1 to chunk 2, its vector follows it
    page, chunks, hashes = make_page("http://example.test/a", ["first", "new", "second"])
    assert store.replace_page(page, chunks, hashes) == 1
    pending = store.pending_embeddings("s1")
    assert [h for h, _ in pending] == ["h:new"]
    hits = store.search_vector(unit(2), limit=1)
    assert store.chunks_by_id([hits[0][0]])[hits[0][0]].chunk_number == 2


def test_same_text_on_another_page_is_embedded_once(store: SQLiteStore) -> None:
    for url in ("http://example.test/a", "http://example.test/b"):
        page, chunks, hashes = make_page(url, ["shared boilerplate"])
        store.replace_page(page, chunks, hashes)
    pending = store.pending_embeddings("s1")
    assert len(pending) == 1
    assert store.store_embeddings({pending[0][0]: unit(3)}) == 2


def test_failure_keeps_previous_chunks(store: SQLiteStore) -> None:
    page, chunks, hashes = make_page("http://example.test/a", ["kept text"])
    store.replace_page(page, chunks, hashes)
    store.record_failure(Page(url=page.url, source="s1", title="", markdown="", content_hash="",
                              status="failed", error="HTTP 500"))
    info = store.get_page(page.url)
    assert info is not None and info.status == "failed" and info.error == "HTTP 500" and info.chunks == 1


def test_bm25_matches_identifiers_exactly_and_filters_sources(store: SQLiteStore) -> None:
    pages = [
        make_page("http://example.test/os", ["Use os.makedirs(path, exist_ok=True) to create folders."]),
        make_page("http://example.test/other", ["Make a directory tree with mkdir."]),
        make_page("http://other.test/os", ["os.makedirs in another source"], source="s2"),
    ]
    for page, chunks, hashes in pages:
        store.replace_page(page, chunks, hashes)
    hits = store.search_bm25("how to use os.makedirs with exist_ok?", limit=10)
    urls = [store.chunks_by_id([i])[i].url for i, _ in hits]
    assert urls[0] in ("http://example.test/os", "http://other.test/os")
    assert "http://example.test/other" not in urls
    only_s2 = store.search_bm25("os.makedirs", sources=["s2"], limit=10)
    assert [store.chunks_by_id([i])[i].source for i, _ in only_s2] == ["s2"]
    # a question written in words finds the underscored identifier through its parts
    assert store.search_bm25("exist ok", limit=10)


@pytest.mark.parametrize("query", ['Session.get()', '--no-cache', 'what is "quoted"?', 'a AND (b OR', 'NEAR(x y)', '*', ''])
def test_bm25_never_breaks_on_user_text(store: SQLiteStore, query: str) -> None:
    page, chunks, hashes = make_page("http://example.test/a", ["Session.get returns a response; no-cache header"])
    store.replace_page(page, chunks, hashes)
    store.search_bm25(query)


def test_query_terms_keep_identifiers_and_drop_stopwords() -> None:
    assert query_terms("How do I use os.makedirs with exist_ok?") == ["os.makedirs", "exist_ok"]
    assert match_expression("the a of") is None
    assert match_expression('say "hi"') == '"say" OR "hi"'


def test_identifier_parts() -> None:
    assert identifier_parts("exist_ok and getJson") == "exist ok get json"


def test_vector_search_filters_by_source(store: SQLiteStore) -> None:
    for i, (url, source) in enumerate([("http://example.test/a", "s1"), ("http://other.test/b", "s2")]):
        page, chunks, hashes = make_page(url, [f"text {i}"], source=source)
        store.replace_page(page, chunks, hashes)
        store.store_embeddings({hashes[0]: unit(i)})
    hits = store.search_vector(unit(0), sources=["s2"], limit=5)
    assert len(hits) == 1 and store.chunks_by_id([hits[0][0]])[hits[0][0]].source == "s2"
    best = store.search_vector(unit(0), limit=5)
    assert best[0][1] == pytest.approx(1.0, abs=1e-5)


def test_remove_source_removes_everything(store: SQLiteStore) -> None:
    page, chunks, hashes = make_page("http://example.test/a", ["x1", "x2"])
    store.replace_page(page, chunks, hashes)
    store.store_embeddings({hashes[0]: unit(0)})
    assert store.remove_source("s1") == 1
    assert store.get_source("s1") is None
    for table in ("pages", "chunks", "chunk_vectors"):
        assert store.conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0
    assert store.conn.execute("SELECT count(*) FROM chunks_fts").fetchone()[0] == 0


def test_list_pages_paginates(store: SQLiteStore) -> None:
    for i in range(25):
        page, chunks, hashes = make_page(f"http://example.test/p{i:02d}", [f"page {i}"])
        store.replace_page(page, chunks, hashes)
    assert store.count_pages("s1") == 25
    first = store.list_pages("s1", limit=10)
    third = store.list_pages("s1", limit=10, offset=20)
    assert len(first) == 10 and len(third) == 5 and first[0].url < third[0].url
    assert store.count_pages("s1", prefix="http://example.test/p1") == 10


def test_bad_paths_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="is a folder"):
        SQLiteStore(tmp_path)
    with pytest.raises(StoreError, match="does not exist"):
        SQLiteStore(tmp_path / "missing" / "shelf.db")
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="docshelf SQLite file"):
        SQLiteStore(junk)


def _reader(path: str, url: str, rounds: int, out: "multiprocessing.Queue[list[int]]") -> None:
    store = SQLiteStore(path)
    counts = []
    for _ in range(rounds):
        counts.append(len(store.get_chunks(url)))
    out.put(counts)


def test_reader_never_sees_half_a_page(store: SQLiteStore, db_path: Path) -> None:
    url = "http://example.test/big"
    page, chunks, hashes = make_page(url, [f"chunk {i}" for i in range(50)])
    store.replace_page(page, chunks, hashes)
    out: multiprocessing.Queue[list[int]] = multiprocessing.get_context("spawn").Queue()
    reader = multiprocessing.get_context("spawn").Process(target=_reader, args=(str(db_path), url, 400, out))
    reader.start()
    for round_ in range(60):
        n = 50 if round_ % 2 else 30
        page, chunks, hashes = make_page(url, [f"chunk {i} v{round_}" for i in range(n)])
        store.replace_page(page, chunks, hashes)
    counts = out.get(timeout=60)
    reader.join(timeout=10)
    assert set(counts) <= {30, 50}

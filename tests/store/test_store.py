"""Every shelf backend, same tests: atomic page replacement, vectors by hash, search, pagination.

The `store` fixture runs each test on a SQLite file and on a fresh PostgreSQL database.
"""

from __future__ import annotations

import multiprocessing

import pytest

from docshelf.errors import ModelMismatchError
from docshelf.models import Page
from docshelf.store.base import SourcePage, Store
from store.shelves import DIM, counts, make_page, open_shelf, unit


def test_store_implements_the_protocol(store: Store) -> None:
    assert isinstance(store, Store)


def test_reopen_keeps_identity_and_refuses_another_model(store: Store, shelf_location: str) -> None:
    store.close()
    again = open_shelf(shelf_location)
    try:
        assert again.embedder_identity() == ("test:model", DIM)
        again.bind_embedder("test:model", DIM)  # same model: fine
        with pytest.raises(ModelMismatchError, match="test:model"):
            again.bind_embedder("other:model", 384)
    finally:
        again.close()


def test_replace_page_never_duplicates(store: Store, shelf_location: str) -> None:
    page, chunks, hashes = make_page("http://example.test/a", ["one", "two", "three"])
    assert store.replace_page(page, chunks, hashes) == 3
    page, chunks, hashes = make_page("http://example.test/a", ["one", "two"])
    store.replace_page(page, chunks, hashes)
    got = store.get_chunks("http://example.test/a")
    assert [c.content for c in got] == ["one", "two"]
    assert counts(store, shelf_location)["fts"] == 2


def test_chunks_read_back_as_written(store: Store) -> None:
    page, chunks, hashes = make_page("http://example.test/a", ["alpha", "beta"])
    chunks[1].metadata = {"zeta": 1, "alpha": [1.5, "x"], "source": "s1"}  # key order is part of a record
    chunks[1].updated_dt = "2025-03-14T10:14:19.386694"
    store.replace_page(page, chunks, hashes)
    assert store.get_chunks(page.url) == chunks
    assert store.get_chunks(page.url, start=1, limit=1) == chunks[1:]
    assert list(store.get_chunks(page.url)[1].metadata) == ["zeta", "alpha", "source"]
    assert store.get_page_markdown(page.url) == page.markdown


def test_page_priors_are_stored_with_the_page(store: Store) -> None:
    page, chunks, hashes = make_page("http://example.test/genindex", ["index entry"])
    page.prior = 0.5
    store.replace_page(page, chunks, hashes)
    other, chunks, hashes = make_page("http://example.test/guide", ["guide text"])
    store.replace_page(other, chunks, hashes)
    assert store.page_priors([page.url, other.url, "http://example.test/unknown"]) == {page.url: 0.5, other.url: 1.0}


def test_set_page_priors(store: Store) -> None:
    page, chunks, hashes = make_page("http://example.test/3.1-announcement", ["what is new"])
    store.replace_page(page, chunks, hashes)
    other, chunks, hashes = make_page("http://example.test/guide", ["guide text"])
    store.replace_page(other, chunks, hashes)
    store.set_page_priors({page.url: 0.5, "http://example.test/unknown": 0.5})
    assert store.page_priors([page.url, other.url]) == {page.url: 0.5, other.url: 1.0}


def test_vectors_are_reused_by_hash_when_text_moves(store: Store) -> None:
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


def test_same_text_on_another_page_is_embedded_once(store: Store) -> None:
    for url in ("http://example.test/a", "http://example.test/b"):
        page, chunks, hashes = make_page(url, ["shared boilerplate"])
        store.replace_page(page, chunks, hashes)
    pending = store.pending_embeddings("s1")
    assert len(pending) == 1
    assert store.store_embeddings({pending[0][0]: unit(3)}) == 2


def test_write_pages_writes_chunks_with_their_vectors_and_replaces_pages(store: Store, shelf_location: str) -> None:
    old, old_chunks, old_hashes = make_page("http://example.test/a", ["old text", "gone text"])
    store.replace_page(old, old_chunks, old_hashes)
    store.store_embeddings({old_hashes[0]: unit(1)})
    a, a_chunks, a_hashes = make_page("http://example.test/a", ["new text", "old text", "left to embed"])
    b, b_chunks, b_hashes = make_page("http://example.test/b", ["second page"])
    pending = store.write_pages([
        SourcePage(a, a_chunks, a_hashes, [unit(2), None, None]),  # "old text" reuses its stored vector
        SourcePage(b, b_chunks, b_hashes, [unit(3)]),
    ])
    assert pending == 1
    assert [h for h, _ in store.pending_embeddings("s1")] == ["h:left to embed"]
    assert [c.content for c in store.get_chunks(a.url)] == ["new text", "old text", "left to embed"]
    assert counts(store, shelf_location) == {"pages": 2, "chunks": 4, "fts": 4, "vectors": 3}
    hits = store.search_vector(unit(3), limit=1)
    assert store.chunks_by_id([hits[0][0]])[hits[0][0]].url == b.url and hits[0][1] == pytest.approx(1.0, abs=1e-5)


def test_failure_keeps_previous_chunks(store: Store) -> None:
    page, chunks, hashes = make_page("http://example.test/a", ["kept text"])
    store.replace_page(page, chunks, hashes)
    store.record_failure(Page(url=page.url, source="s1", title="", markdown="", content_hash="",
                              status="failed", error="HTTP 500"))
    info = store.get_page(page.url)
    assert info is not None and info.status == "failed" and info.error == "HTTP 500" and info.chunks == 1
    store.touch_page(page.url, "2030-01-01T00:00:00+00:00")
    info = store.get_page(page.url)
    assert info is not None and info.status == "ok" and info.error is None


def test_bm25_matches_identifiers_exactly_and_filters_sources(store: Store) -> None:
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


def test_inbound_text_is_searchable_until_the_page_is_replaced(store: Store) -> None:
    store.replace_page(*make_page("http://example.test/http", ["Send If-None-Match with the stored ETag.", "Other."]))
    store.replace_page(*make_page("http://other.test/http", ["Send If-None-Match here too."], source="s2"))
    ids = {(chunk.url, chunk.chunk_number): i for i, chunk in store.source_chunks("s1")}
    assert list(ids) == [("http://example.test/http", 0), ("http://example.test/http", 1)]
    assert [c.source for _, c in store.source_chunks("s2")] == ["s2"]
    first = ids[("http://example.test/http", 0)]
    assert store.search_bm25("caching") == []

    assert store.set_inbound_text("s1", {first: "caching HTTP\nconditional_get"}) == 1
    assert [i for i, _ in store.search_bm25("caching")] == [first]
    assert [i for i, _ in store.search_bm25("conditional get")] == [first]  # identifier parts, as in the body
    assert store.search_bm25("stored ETag", limit=10)  # the chunk's own text is still indexed
    assert store.set_inbound_text("s1", {first: "caching HTTP\nconditional_get"}) == 0  # unchanged: nothing written

    store.replace_page(*make_page("http://example.test/http", ["Send If-None-Match with the stored ETag.", "Other."]))
    assert store.search_bm25("caching") == []  # a re-stored page waits for the next pass
    new_first = next(i for i, c in store.source_chunks("s1") if c.chunk_number == 0)
    store.set_inbound_text("s1", {new_first: "caching"})
    assert [i for i, _ in store.search_bm25("caching")] == [new_first]
    assert store.set_inbound_text("s1", {}) == 1  # a chunk left out has no inbound text any more
    assert store.search_bm25("caching") == []


@pytest.mark.parametrize("query", ['Session.get()', '--no-cache', 'what is "quoted"?', 'a AND (b OR', 'NEAR(x y)', '*', ''])
def test_bm25_never_breaks_on_user_text(store: Store, query: str) -> None:
    page, chunks, hashes = make_page("http://example.test/a", ["Session.get returns a response; no-cache header"])
    store.replace_page(page, chunks, hashes)
    store.search_bm25(query)


def test_vector_search_filters_by_source(store: Store) -> None:
    for i, (url, source) in enumerate([("http://example.test/a", "s1"), ("http://other.test/b", "s2")]):
        page, chunks, hashes = make_page(url, [f"text {i}"], source=source)
        store.replace_page(page, chunks, hashes)
        store.store_embeddings({hashes[0]: unit(i)})
    hits = store.search_vector(unit(0), sources=["s2"], limit=5)
    assert len(hits) == 1 and store.chunks_by_id([hits[0][0]])[hits[0][0]].source == "s2"
    best = store.search_vector(unit(0), limit=5)
    assert best[0][1] == pytest.approx(1.0, abs=1e-5)


def test_remove_source_removes_everything(store: Store, shelf_location: str) -> None:
    page, chunks, hashes = make_page("http://example.test/a", ["x1", "x2"])
    store.replace_page(page, chunks, hashes)
    store.store_embeddings({hashes[0]: unit(0)})
    assert store.remove_source("s1") == 1
    assert store.get_source("s1") is None
    assert counts(store, shelf_location) == {"pages": 0, "chunks": 0, "fts": 0, "vectors": 0}


def test_remove_pages_and_source_stats(store: Store) -> None:
    for name in ("a", "b", "c"):
        page, chunks, hashes = make_page(f"http://example.test/{name}", [f"{name}1", f"{name}2"])
        store.replace_page(page, chunks, hashes)
    store.store_embeddings({"h:a1": unit(1)})
    store.record_failure(Page(url="http://example.test/bad", source="s1", title="", markdown="", content_hash="",
                              status="failed", error="HTTP 404"))
    assert store.remove_pages("s1", ["http://example.test/b"]) == 1
    stats = {s.source.name: s for s in store.list_sources()}
    assert list(stats) == ["s1", "s2"]
    s1 = stats["s1"]
    assert (s1.pages, s1.pages_failed, s1.pages_skipped, s1.chunks, s1.embedded) == (2, 1, 0, 4, 1)
    assert set(store.page_states("s1")) == {"http://example.test/a", "http://example.test/c", "http://example.test/bad"}


def test_list_pages_paginates(store: Store) -> None:
    for i in range(25):
        page, chunks, hashes = make_page(f"http://example.test/p{i:02d}", [f"page {i}"])
        store.replace_page(page, chunks, hashes)
    assert store.count_pages("s1") == 25
    first = store.list_pages("s1", limit=10)
    third = store.list_pages("s1", limit=10, offset=20)
    assert len(first) == 10 and len(third) == 5 and first[0].url < third[0].url
    assert store.count_pages("s1", prefix="http://example.test/p1") == 10


def _reader(location: str, url: str, rounds: int, out: multiprocessing.Queue[list[int]]) -> None:
    store = open_shelf(location)
    counts = []
    for _ in range(rounds):
        counts.append(len(store.get_chunks(url)))
    store.close()
    out.put(counts)


def test_reader_never_sees_half_a_page(store: Store, shelf_location: str) -> None:
    url = "http://example.test/big"
    page, chunks, hashes = make_page(url, [f"chunk {i}" for i in range(50)])
    store.replace_page(page, chunks, hashes)
    out: multiprocessing.Queue[list[int]] = multiprocessing.get_context("spawn").Queue()
    reader = multiprocessing.get_context("spawn").Process(target=_reader, args=(shelf_location, url, 400, out))
    reader.start()
    for round_ in range(60):
        n = 50 if round_ % 2 else 30
        page, chunks, hashes = make_page(url, [f"chunk {i} v{round_}" for i in range(n)])
        store.replace_page(page, chunks, hashes)
    counts = out.get(timeout=60)
    reader.join(timeout=10)
    assert set(counts) <= {30, 50}


def test_packed_sections_read_back_and_their_headings_are_searchable(store: Store) -> None:
    from docshelf.models import SectionStart

    page, chunks, hashes = make_page("http://example.test/packed", ["Intro text.\n\n## Rotating keys\n\nRotate them."])
    sections = [SectionStart(0, "sec-0", ["Page", "Section 0"]), SectionStart(13, "rotating", ["Page", "Rotating keys"])]
    chunks[0].sections = sections
    store.replace_page(page, chunks, hashes)
    (got,) = store.get_chunks("http://example.test/packed")
    assert got.sections == sections
    assert got.cite_urls == ["http://example.test/packed#sec-0", "http://example.test/packed#rotating"]
    assert [chunk_id for chunk_id, _ in store.search_bm25("rotating")]


def test_chunks_marked_not_embedded_never_wait_for_a_vector(store: Store) -> None:
    from docshelf.store.base import NOT_EMBEDDED

    page, chunks, _ = make_page("http://example.test/genindex", ["alpha (function)", "beta (class)"])
    assert store.replace_page(page, chunks, [NOT_EMBEDDED, NOT_EMBEDDED]) == 0
    assert store.pending_embeddings() == []
    assert store.chunks_to_enrich(None, "llm:test", None) == []
    assert [chunk_id for chunk_id, _ in store.search_bm25("alpha")]

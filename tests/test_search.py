"""Hybrid ranking on a real shelf and the real model: fusion, page ranking and the lexical lead."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from docshelf.embed import get_embedder
from docshelf.models import Source
from docshelf.search import FusionSettings, HybridSearcher
from docshelf.store.sqlite import SQLiteStore
from store.shelves import make_page

QUERY = "What does frobnicate_cache() do to the widget cache?"
LEXICAL = "http://w.test/reference/maintenance.html"
PROSE = [
    ("http://w.test/guide/caching.html", "Widget cache", [
        "The widget cache keeps rendered widgets in memory so the next request for the same widget is fast.",
        "How the widget cache decides what to keep: widgets used often stay, rarely used widgets leave first.",
    ]),
    ("http://w.test/guide/tuning.html", "Tuning the widget cache", [
        "Size the widget cache to the number of widgets your pages show; a cache that is too small thrashes.",
        "What the widget cache does under memory pressure: it drops the least recently used widgets.",
    ]),
    ("http://w.test/guide/layout.html", "Layout", [
        "Layouts arrange widgets in rows and columns and recompute positions when the window is resized.",
    ]),
]


@pytest.fixture(scope="module")
def shelf(tmp_path_factory: pytest.TempPathFactory):
    embedder = get_embedder()
    store = SQLiteStore(tmp_path_factory.mktemp("search") / "shelf.db")
    store.bind_embedder(embedder.model_id, embedder.dim)
    store.upsert_source(Source(name="w", root="http://w.test/"))
    pages = [*PROSE, (LEXICAL, "Maintenance calls", [
        "frobnicate_cache() walks the store once and discards entries whose source files changed on disk.",
        "Maintenance calls run in a background thread; each logs one line when it finishes.",
    ])]
    for url, title, texts in pages:
        page, chunks, hashes = make_page(url, texts, source="w", title=title)
        store.replace_page(page, chunks, hashes)
        store.store_embeddings(dict(zip(hashes, embedder.embed_documents(texts))))
    yield store, embedder
    store.close()


def ranked(shelf, query: str = QUERY, **settings) -> list[str]:
    store, embedder = shelf
    searcher = HybridSearcher(store, lambda: embedder, replace(FusionSettings(), **settings))
    return [hit.page_url for hit in searcher.search(query, k=4)]


def test_fusion_alone_lets_vector_neighbours_outvote_a_decisive_lexical_match(shelf) -> None:
    assert ranked(shelf, lexical_lead=None)[0] != LEXICAL


def test_a_decisive_bm25_winner_is_ranked_first(shelf) -> None:
    pages = ranked(shelf)
    assert pages[0] == LEXICAL
    assert sorted(pages[1:]) == sorted(set(ranked(shelf, lexical_lead=None)) - {LEXICAL})


def test_no_lead_when_bm25_has_no_clear_winner(shelf) -> None:
    query = "how big should the widget cache be"  # two guide pages match about equally well
    assert ranked(shelf, query) == ranked(shelf, query, lexical_lead=None)


def test_bm25_and_vector_modes_ignore_the_lead(shelf) -> None:
    for mode in ("bm25", "vector"):
        store, embedder = shelf
        hits = HybridSearcher(store, lambda: embedder).search(QUERY, k=4, mode=mode)
        plain = HybridSearcher(store, lambda: embedder, FusionSettings(lexical_lead=None)).search(QUERY, k=4, mode=mode)
        assert [h.page_url for h in hits] == [h.page_url for h in plain]


def test_a_lead_the_vectors_do_not_back_is_not_taken(shelf) -> None:
    # The vectors rank the guide pages above the maintenance page: backed only by the first vector page, no lead.
    assert ranked(shelf, lead_vector_pages=1) == ranked(shelf, lexical_lead=None)
    assert ranked(shelf, lead_vector_pages=4)[0] == LEXICAL


def test_a_packed_chunk_is_cited_at_the_section_that_matches(tmp_path: Path) -> None:
    from docshelf.chunk import chunk_markdown
    from docshelf.search import best_section, _cite_terms
    from docshelf.models import Chunk

    markdown = ("# Widgets {#widgets}\n\nWidgets draw themselves.\n\n## Installing {#install}\n\nRun pip install widgets."
                "\n\n## Caching rendered widgets {#cache}\n\nThe render cache keeps each widget for ten minutes.")
    (section,) = chunk_markdown(markdown)
    chunk = Chunk(url="http://w.test/", source="w", chunk_number=0, title="Widgets", summary="", content=section.content,
                  heading_path=section.heading_path, anchor=section.anchor, sections=section.sections)
    assert best_section(chunk, _cite_terms("how long are widgets cached?")).anchor == "cache"
    assert best_section(chunk, _cite_terms("pip install")).anchor == "install"
    assert best_section(chunk, _cite_terms("nothing in common")).anchor == "widgets"
    assert chunk.cite_urls == ["http://w.test/#widgets", "http://w.test/#install", "http://w.test/#cache"]


def test_a_page_the_vectors_single_out_by_a_margin_leads(shelf) -> None:
    from docshelf.models import Chunk

    store, embedder = shelf
    searcher = HybridSearcher(store, lambda: embedder)
    chunks = {i: Chunk(url=f"http://w.test/{page}.html", source="w", chunk_number=i, title="", summary="", content="")
              for i, page in enumerate(["a", "a", "b", "c"])}
    # the second chunk of the same page does not count as the runner-up: the margin is to the next page
    assert searcher._vector_lead([(0, 0.61), (1, 0.58), (2, 0.50), (3, 0.40)], chunks) == "http://w.test/a.html"
    assert searcher._vector_lead([(0, 0.61), (2, 0.55), (3, 0.40)], chunks) is None
    assert searcher._vector_lead([(0, 0.61)], chunks) is None
    off = HybridSearcher(store, lambda: embedder, FusionSettings(vector_lead=None))
    assert off._vector_lead([(0, 0.9), (2, 0.1)], chunks) is None
    # with no lexical lead, the led page is ranked first in hybrid search
    query = "what happens to rendered widgets when memory runs short"
    vector_first = HybridSearcher(store, lambda: embedder).search(query, k=4, mode="vector")[0].page_url
    assert ranked(shelf, query, vector_lead=0.0, lexical_lead=None)[0] == vector_first

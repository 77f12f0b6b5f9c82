"""The shared read calls and the answer helpers, on a real shelf built from the Sphinx fixture site."""

from __future__ import annotations

from pathlib import Path

import pytest

from docshelf.answer import answer_with_passages, cited_urls, validate_citations
from docshelf.embed import get_embedder
from docshelf.ingest import Ingestor
from docshelf.search import HybridSearcher
from docshelf.shelf_tools import ChunkRef, NotOnShelfError, ShelfTools
from docshelf.store import open_store
from servers import Server

SPHINX = Path(__file__).parent / "fixtures" / "sites" / "sphinx"


def crawl_site(site: Path, shelf: Path, source: str) -> str:
    """Serve the fixture site folder `site`, crawl it into the shelf file `shelf` as `source`; return its base URL."""
    with Server(site) as server:
        store = open_store(str(shelf))
        try:
            # Unversioned, though the site states 2.4: these shelves test the tools, not versions.
            Ingestor(store, lambda: get_embedder(None)).add(server.url("/"), source=source, version="")
        finally:
            store.close()
        return server.base


def build_widgets_shelf(path: Path) -> str:
    """Crawl the Sphinx fixture site into a shelf at `path` as source "widgets"; return the site's base URL."""
    return crawl_site(SPHINX, path, "widgets")


@pytest.fixture(scope="module")
def shelf(tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("shelf") / "shelf.db"
    base = build_widgets_shelf(path)
    store = open_store(str(path))
    yield ShelfTools(store, HybridSearcher(store, lambda: get_embedder(None))), base
    store.close()


def test_search_passages_carry_url_and_anchor(shelf) -> None:
    tools, base = shelf
    result = tools.search_docs("WIDGETS_CACHE_TTL", k=3)
    first = result.passages[0]
    assert first.ref.page_url == f"{base}/configuration.html"
    assert first.ref.url.startswith(f"{base}/configuration.html#")
    markdown = result.to_markdown()
    assert f"<{first.ref.url}>" in markdown and "WIDGETS_CACHE_TTL" in markdown


def test_search_output_is_capped_with_a_hint(shelf) -> None:
    tools, _ = shelf
    result = tools.search_docs("widgets", k=10)
    markdown = result.to_markdown(max_chars=800)
    assert "more passages cut" in markdown
    assert len(result.shown_passages(800)) < len(result.passages)


def test_unknown_source_is_a_clear_error(shelf) -> None:
    tools, _ = shelf
    with pytest.raises(NotOnShelfError, match="unknown source 'nope'.*widgets"):
        tools.search_docs("cache", source="nope")
    with pytest.raises(NotOnShelfError, match="unknown source"):
        tools.list_pages("nope")


def test_list_pages_pages_with_an_offset_hint(shelf) -> None:
    tools, base = shelf
    first = tools.list_pages("widgets", limit=3)
    assert first.total == 4 and len(first.pages) == 3
    assert "offset=3" in first.to_markdown()
    rest = tools.list_pages("widgets", limit=3, offset=3)
    assert len(rest.pages) == 1 and "More pages" not in rest.to_markdown()
    assert {p.url for p in first.pages + rest.pages} == {f"{base}/{n}" for n in
                                                         ("", "api.html", "configuration.html", "quickstart.html")}


def test_read_page_in_windows_covers_every_chunk_in_order(shelf) -> None:
    tools, base = shelf
    url = f"{base}/configuration.html"
    total = tools.store.get_page(url).chunks
    seen: list[int] = []
    start = 0
    while True:
        window = tools.read_page(url, start, max_chunks=4)
        shown = window.shown_passages(max_chars=1500)
        seen += [p.ref.chunk_number for p in shown]
        markdown = window.to_markdown(max_chars=1500)
        if seen[-1] == total - 1:
            assert "Page continues" not in markdown
            break
        assert f"start_chunk={seen[-1] + 1}" in markdown
        start = seen[-1] + 1
    assert seen == list(range(total))


def test_read_page_starts_at_the_anchor_and_forgives_slashes(shelf) -> None:
    tools, base = shelf
    window = tools.read_page(f"{base}/api.html#widgets.Registry.lookup", max_chunks=1)
    assert window.passages[0].ref.url == f"{base}/api.html#widgets.Registry.lookup"
    assert tools.read_page(base).page.url == f"{base}/"  # no trailing slash given
    with pytest.raises(NotOnShelfError, match="no page"):
        tools.read_page(f"{base}/missing.html")
    with pytest.raises(NotOnShelfError, match="no chunk 999"):
        tools.read_page(f"{base}/api.html", start_chunk=999)


def test_passages_answer_groups_by_page_and_cites_stored_chunks(shelf) -> None:
    tools, _ = shelf
    answer = answer_with_passages(tools, "tessellate a widget", k=5)
    assert answer.model is None and "DOCSHELF_LLM_MODEL" in answer.answer
    assert answer.citations
    for ref in answer.citations:
        chunk = tools.store.get_chunks(ref.page_url, start=ref.chunk_number, limit=1)[0]
        assert ref.url in chunk.cite_urls and f"<{ref.url}>" in answer.answer
    pages = [ref.page_url for ref in answer.citations]
    assert answer.answer.count(f"\n<{pages[0]}>\n") == 1  # one heading per page, however many passages


def test_cited_urls_strip_markdown_punctuation() -> None:
    text = "See [a](http://x/a.html#one). Also <http://x/b.html>, and http://x/c.html#two."
    assert cited_urls(text) == ["http://x/a.html#one", "http://x/b.html", "http://x/c.html#two"]


def test_validate_citations_accepts_returned_chunks_and_flags_the_rest() -> None:
    returned = {"http://x/a.html#one": ChunkRef("http://x/a.html#one", "http://x/a.html", "A", 3),
                "http://x/a.html#zero": ChunkRef("http://x/a.html#zero", "http://x/a.html", "A", 1)}
    text = ("[1](http://x/a.html#one) [2](http://x/a.html) [3](http://x/a.html#invented) "
            "[4](http://elsewhere.example/)")
    citations, unverified = validate_citations(text, returned)
    assert [c.chunk_number for c in citations] == [3, 1]  # a bare page URL cites its first returned chunk
    assert unverified == ["http://x/a.html#invented", "http://elsewhere.example/"]

"""Each generator's fixture site, served over HTTP, crawled into one shelf with the real model and searched."""

from __future__ import annotations

from pathlib import Path

import pytest
from servers import Server
from test_chunk import fences_balanced  # the chunk contract's own oracle

from docshelf.embed import get_embedder
from docshelf.ingest import Ingestor
from docshelf.search import HybridSearcher
from docshelf.store.sqlite import SQLiteStore

SITES = Path(__file__).parent / "fixtures" / "sites"
GENERATORS = ("sphinx", "mkdocs", "material", "docusaurus")

# (query, site, page path): distinctive terms from tests/fixtures/sites/README.md
QUERIES = [
    ("WIDGETS_CACHE_TTL", "sphinx", "configuration.html"),
    ("tessellate", "sphinx", "api.html"),
    ("orphaned-slot", "mkdocs", "commands/"),
    ("sandcastle handshake", "mkdocs", "plugins/"),
    ("thundering-herd backoff", "material", "api/rate-limits/"),
    ("Widgets-Signature replay window", "material", "api/webhooks/"),
    ("heliotrope palette", "docusaurus", "components.html"),
    ("moonwalk build", "docusaurus", "installation.html"),
]

@pytest.fixture(scope="module")
def shelf(tmp_path_factory: pytest.TempPathFactory):
    servers = {name: Server(SITES / name).start() for name in GENERATORS}
    store = SQLiteStore(tmp_path_factory.mktemp("shelf") / "shelf.db")
    embedder = get_embedder()
    summaries = {name: Ingestor(store, lambda: embedder).add(server.url("/"), source=name)
                 for name, server in servers.items()}
    yield store, embedder, servers, summaries
    for server in servers.values():
        server.stop()
    store.close()


def test_every_page_of_every_generator_is_stored_and_embedded(shelf) -> None:
    store, _, _, summaries = shelf
    for name, summary in summaries.items():
        assert (summary.pages_ok, summary.pages_failed) == (4, 0), (name, summary.failures)
        assert summary.embedded == summary.chunks > 0
    for stats in store.list_sources():
        assert stats.embedded == stats.chunks


def test_every_chunk_has_balanced_fences_and_no_link_artefacts(shelf) -> None:
    store, *_ = shelf
    contents = [row[0] for row in store.conn.execute("SELECT content FROM chunks")]
    assert contents and all(fences_balanced(c) for c in contents)
    assert not any("[](" in c for c in contents)
    assert not any("¶" in c for c in contents)


@pytest.mark.parametrize(("query", "site", "path"), QUERIES)
def test_distinctive_terms_find_their_page_first(shelf, query: str, site: str, path: str) -> None:
    store, embedder, servers, _ = shelf
    hits = HybridSearcher(store, lambda: embedder).search(query, k=3)
    assert hits[0].page_url == servers[site].url("/" + path)

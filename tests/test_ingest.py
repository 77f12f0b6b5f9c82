"""The pipeline end to end on a real HTTP server, a real shelf and the real bundled model."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from counting import CountingEmbedder
from servers import Reply, Server

from docshelf.crawl.base import CrawlOptions
from docshelf.embed import get_embedder
from docshelf.ingest import Ingestor
from docshelf.search import HybridSearcher
from docshelf.store.sqlite import SQLiteStore

TOPICS = [
    ("installation", "Install the widget toolkit with pip and verify the version number."),
    ("configuration", "Configure timeouts, retries and the cache folder through environment variables."),
    ("streaming", "Stream a large response body in chunks instead of loading it into memory."),
    ("authentication", "Send a bearer token in the Authorization header for every request."),
    ("testing", "Use the built-in test client to call views without running a server."),
]


def page_html(title: str, body: str, links: list[str]) -> str:
    nav = "".join(f'<li><a href="{link}">{link}</a></li>' for link in links)
    return f"""<!DOCTYPE html><html><head><meta charset="utf-8"><title>{title} — Widgets docs</title></head>
<body><div class="sphinxsidebar" role="navigation"><ul>{nav}</ul></div>
<div class="document"><div class="body" role="main"><section id="{title.lower()}">
<h1>{title}<a class="headerlink" href="#{title.lower()}">¶</a></h1>
<p>{body}</p>
<section id="example"><h2>Example<a class="headerlink" href="#example">¶</a></h2>
<p>The following example shows {title.lower()} in practice, step by step, with the options most projects need.</p>
<div class="highlight-python notranslate"><div class="highlight"><pre>import widgets
client = widgets.Client(timeout=10)
client.{title.lower()}()
</pre></div></div>
</section></section></div></div><div class="footer">© Widgets authors</div></body></html>"""


def write_site(root: Path, topics=TOPICS) -> Path:
    site = root / "docs"
    site.mkdir(parents=True, exist_ok=True)
    links = [f"{name}.html" for name, _ in topics]
    (site / "index.html").write_text(page_html("Index", "Welcome to the Widgets documentation.", links))
    for name, body in topics:
        (site / f"{name}.html").write_text(page_html(name.capitalize(), body, ["index.html", *links]))
    return site


@pytest.fixture(scope="module")
def embedder() -> CountingEmbedder:
    return CountingEmbedder(get_embedder())


@pytest.fixture
def site(tmp_path: Path):
    write_site(tmp_path / "www")
    with Server(tmp_path / "www") as server:
        yield server


def test_add_stores_every_page_with_vectors_and_searches(site: Server, db_path: Path, embedder) -> None:
    store = SQLiteStore(db_path)
    summary = Ingestor(store, lambda: embedder).add(site.url("/docs/"), source="widgets")
    assert (summary.pages_ok, summary.pages_failed, summary.pages_skipped) == (6, 0, 0)
    assert summary.chunks > 0 and summary.embedded == summary.chunks
    [stats] = store.list_sources()
    assert stats.embedded == stats.chunks == summary.chunks
    chunk = store.get_chunks(site.url("/docs/streaming.html"))[0]
    assert chunk.metadata["chunk_size"] == len(chunk.content)
    assert chunk.metadata["url_path"] == "/docs/streaming.html"
    assert set(chunk.metadata) >= {"source", "crawled_at", "url_path", "chunk_size"}
    hits = HybridSearcher(store, lambda: embedder).search("read a big download piece by piece", k=3)
    assert hits[0].page_url == site.url("/docs/streaming.html")
    assert hits[0].url.startswith(site.url("/docs/streaming.html#"))


def test_refresh_embeds_nothing_and_removes_gone_pages(tmp_path: Path, db_path: Path, embedder) -> None:
    site_dir = write_site(tmp_path / "www")
    store = SQLiteStore(db_path)
    with Server(tmp_path / "www") as server:
        Ingestor(store, lambda: embedder).add(server.url("/docs/"), source="widgets")
        before = len(embedder.documents)
        again = Ingestor(store, lambda: embedder).add(server.url("/docs/"), source="widgets")
        assert len(embedder.documents) == before, "an unchanged site must not be embedded again"
        assert (again.pages_ok, again.pages_unchanged) == (0, 6)

        # one page edited, one page gone (and unlinked): only the edited text is embedded
        (site_dir / "testing.html").unlink()
        write_site(tmp_path / "www", [t for t in TOPICS if t[0] != "testing"])
        (site_dir / "index.html").write_text(
            page_html("Index", "Welcome to the Widgets documentation, now with a changelog.",
                      [f"{n}.html" for n, _ in TOPICS if n != "testing"])
        )
        third = Ingestor(store, lambda: embedder).add(server.url("/docs/"), source="widgets")
    assert third.pages_ok == 1 and third.pages_removed == 1
    assert 0 < len(embedder.documents) - before <= 2
    assert store.get_page(server.url("/docs/testing.html")) is None


def test_failures_are_recorded_and_the_crawl_goes_on(tmp_path: Path, db_path: Path, embedder) -> None:
    write_site(tmp_path / "www", TOPICS[:2])
    index = tmp_path / "www" / "docs" / "index.html"
    index.write_text(page_html("Index", "Start here.", ["installation.html", "configuration.html", "missing.html",
                                                        "broken.html", "manual.pdf"]))
    with Server(tmp_path / "www") as server:
        server.route("/docs/broken.html", *[Reply(status=500)] * 10)
        server.route("/docs/manual.pdf", Reply(body=b"%PDF-1.4", headers={"Content-Type": "application/pdf"}))
        store = SQLiteStore(db_path)
        options = CrawlOptions(retries=1, backoff=0.01)
        summary = Ingestor(store, lambda: embedder).add(server.url("/docs/"), source="w", options=options)
    assert summary.pages_ok == 3
    reasons = {f["url"].rsplit("/", 1)[-1]: f["reason"] for f in summary.failures}
    assert "404" in reasons["missing.html"] and "500" in reasons["broken.html"]
    assert summary.pages_failed == 2
    failed = {p.url.rsplit("/", 1)[-1]: p for p in store.list_pages("w") if p.status != "ok"}
    assert set(failed) >= {"missing.html", "broken.html"}


def test_per_version_pages_get_the_release_notes_prior(tmp_path: Path, db_path: Path, embedder) -> None:
    site_dir = write_site(tmp_path / "www")
    topics = [f"{name}.html" for name, _ in TOPICS]

    def publish(versions: list[str]) -> None:
        for version in versions:
            (site_dir / f"release-{version}.html").write_text(page_html(
                f"Widgets {version}", f"Widgets {version} brings faster streaming and a new test client.", ["index.html"]))
        (site_dir / "index.html").write_text(page_html(
            "Index", "Welcome to the Widgets documentation.", topics + [f"release-{v}.html" for v in versions]))

    publish(["2.0", "2.1", "3.0"])
    store = SQLiteStore(db_path)
    with Server(tmp_path / "www") as server:
        releases = {server.url(f"/docs/release-{v}.html") for v in ("2.0", "2.1", "3.0")}
        Ingestor(store, lambda: embedder).add(server.url("/docs/"), source="widgets")
        priors = store.page_priors([server.url(f"/docs/{page}") for page in topics] + sorted(releases))
        assert {url for url, prior in priors.items() if prior < 1} == releases
        assert len(priors) == len(topics) + 3

        # two releases are no series: both get back the prior of their own text
        (site_dir / "release-3.0.html").unlink()
        publish(["2.0", "2.1"])
        Ingestor(store, lambda: embedder).add(server.url("/docs/"), source="widgets")
        kept = [server.url("/docs/release-2.0.html"), server.url("/docs/release-2.1.html")]
        assert store.page_priors(kept) == {url: 1.0 for url in kept}
    store.close()


def index_page_html(entries: list[tuple[str, str]]) -> str:
    """A generated index: nothing but entries that link to the pages that explain them."""
    items = "".join(f'<li><a href="{href}">{text}</a></li>' for text, href in entries)
    return f"""<!DOCTYPE html><html><head><title>Index — Widgets docs</title></head>
<body><div class="document"><div class="body" role="main"><section id="index"><h1>Index</h1>
<ul>{items}</ul></section></div></div></body></html>"""


def test_generated_navigation_is_searchable_but_never_embedded(tmp_path: Path, db_path: Path, embedder) -> None:
    site_dir = write_site(tmp_path / "www")
    entries = [(f"{name} ({kind})", f"{name}.html#example") for name, _ in TOPICS for kind in ("guide", "example", "api")]
    (site_dir / "genindex.html").write_text(index_page_html(entries * 4))
    (site_dir / "index.html").write_text(page_html(
        "Index", "Welcome to the Widgets documentation.", [f"{n}.html" for n, _ in TOPICS] + ["genindex.html"]))
    store = SQLiteStore(db_path)
    with Server(tmp_path / "www") as server:
        before = len(embedder.documents)
        summary = Ingestor(store, lambda: embedder).add(server.url("/docs/"), source="widgets")
        genindex = server.url("/docs/genindex.html")
        embedded = [d for d in embedder.documents[before:] if "(guide)" in d]
        assert embedded == [], "the index's chunks were embedded"
        assert store.get_chunks(genindex) and summary.embedded == summary.chunks - len(store.get_chunks(genindex))
        assert store.page_priors([genindex])[genindex] < 1
        hits = HybridSearcher(store, lambda: embedder).search("streaming (guide)", k=10, mode="bm25")
        assert genindex in {hit.page_url for hit in hits}
        again = Ingestor(store, lambda: embedder).add(server.url("/docs/"), source="widgets")
        assert again.embedded == 0 and again.pages_unchanged == 7


def test_a_repeated_section_shares_one_vector(tmp_path: Path, db_path: Path, embedder) -> None:
    shared = ("Every widget keeps its state in a small file next to the project, written atomically so that a "
              "crash never leaves half a file behind; the file records the version, the options the widget was "
              "built with, and the time of the last refresh, and docshelf reads it back on the next start.")
    write_site(tmp_path / "www", [("storage", shared), ("persistence", shared), *TOPICS[:2]])
    store = SQLiteStore(db_path)
    with Server(tmp_path / "www") as server:
        before = len(embedder.documents)
        summary = Ingestor(store, lambda: embedder).add(server.url("/docs/"), source="widgets")
        assert summary.shared_vectors >= 1
        assert sum("written atomically" in d for d in embedder.documents[before:]) == 1
        assert summary.embedded == summary.chunks  # the copy got the vector all the same
        hits = HybridSearcher(store, lambda: embedder).search("crash half a file", k=5, mode="vector")
        assert {server.url("/docs/storage.html"), server.url("/docs/persistence.html")} <= {h.page_url for h in hits}


INBOUND_SITE = Path(__file__).parent / "fixtures" / "inbound_site"


def test_index_entries_and_cross_references_find_the_section_they_name(tmp_path: Path, db_path: Path, embedder) -> None:
    # http.html never says "caching" or "revalidation": the genindex ("caching" › "HTTP") and
    # quickstart's cross-reference ("see revalidation") do, and both point at #conditional-requests.
    site = shutil.copytree(INBOUND_SITE, tmp_path / "www")
    store = SQLiteStore(db_path)
    with Server(site) as server:
        target = server.url("/docs/http.html")

        def found(query: str) -> list[str]:
            hits = HybridSearcher(store, lambda: embedder).search(query, k=5, mode="bm25")
            return [h.content for h in hits if h.page_url == target]

        Ingestor(store, lambda: embedder).add(server.url("/docs/"), source="widgets")
        for query in ("caching", "revalidation"):
            [content] = found(query)
            assert "Conditional requests" in content, query

        # the pass runs after every crawl: an entry renamed in the index renames the keyword
        index = site / "docs" / "genindex.html"
        index.write_text(index.read_text().replace("caching", "validators"))
        Ingestor(store, lambda: embedder).add(server.url("/docs/"), source="widgets")
        assert found("caching") == []
        [content] = found("validators")
        assert "Conditional requests" in content
    store.close()

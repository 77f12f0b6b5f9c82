"""Versions of one documentation on one shelf: detection, order, search by version, removal — on both backends.

The fixture (tests/fixtures/versioned_site, built by its make.py) is the Sphinx fixture site as
releases 2.2, 2.3 and 2.4 under `/en/<version>/`; 2.4 adds a "Live streaming" page and rewrites a
quickstart paragraph.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from docshelf.cli import cli
from docshelf.crawl.version import version_in_mike, version_in_page, version_in_url, without_version
from docshelf.embed import get_embedder
from docshelf.ingest import Ingestor
from docshelf.search import HybridSearcher
from docshelf.shelf_tools import ShelfTools
from docshelf.store import open_store
from docshelf.store.base import Store
from docshelf.versions import (
    NotOnShelfError,
    ShelfVersions,
    UnknownVersionError,
    nearest,
    newest_first,
    same_page_key,
)
from servers import Server
from store import shelves

shelf_location = shelves.shelf_location

FIXTURES = Path(__file__).parent / "fixtures"
VERSIONED = FIXTURES / "versioned_site"
SPHINX = FIXTURES / "sites" / "sphinx"
DOCUSAURUS = FIXTURES / "sites" / "docusaurus"


# -- order and resolution --------------------------------------------------------------------
def test_versions_sort_by_pep_440_with_unorderable_ones_and_unversioned_last() -> None:
    assert newest_first(["4.2", "5.1", "10.0", "5.1.3", "v2", "stable", "", "5.2rc1"]) == [
        "10.0", "5.2rc1", "5.1.3", "5.1", "4.2", "v2", "stable", ""]


def test_resolve_names_the_newest_the_pinned_or_the_stated_version() -> None:
    shelf = ShelfVersions.of(["django@4.2", "django@5.1", "flask"])
    assert shelf.resolve("django") == "django@5.1"
    assert shelf.resolve("django", pins={"django": "4.2"}) == "django@4.2"
    assert shelf.resolve("django@4.2") == "django@4.2"
    assert shelf.resolve("flask") == "flask"
    assert shelf.search_keys(()) == ("django@5.1", "flask")  # the newest of each
    assert ShelfVersions.of(["a", "b@1.0"]).search_keys(()) == ()  # one version each: no filter at all


def test_an_unknown_version_lists_the_versions_on_the_shelf() -> None:
    shelf = ShelfVersions.of(["django@4.2", "django@5.1"])
    with pytest.raises(UnknownVersionError, match=r"no version '9.9'.*it has: 5.1, 4.2"):
        shelf.resolve("django@9.9")
    with pytest.raises(NotOnShelfError, match=r"unknown source 'flask'; the shelf holds: django"):
        shelf.resolve("flask")


def test_nearest_prefers_the_same_major_minor() -> None:
    assert nearest(["4.2", "5.0", "5.1"], "5.1.4") == "5.1"
    assert nearest(["4.2", "5.0"], "5.1.4") == "5.0"
    assert nearest(["4.2"], "6.0") is None


def test_versions_of_one_page_share_a_key() -> None:
    assert same_page_key("https://d.org/en/4.2/topics/", "4.2") == same_page_key("https://d.org/en/5.1/topics/", "5.1")
    assert same_page_key("https://d.org/v2.1/api/", "2.1") == "https://d.org/{version}/api/"


# -- detection -------------------------------------------------------------------------------
@pytest.mark.parametrize(("url", "version"), [
    ("https://docs.djangoproject.com/en/4.2/", "4.2"),
    ("https://example.org/v2.1/guide/", "2.1"),
    ("https://docs.python.org/en/3/library/", "3"),
    ("https://docs.python.org/3/library/", None),  # a bare number is not taken without a language before it
    ("https://flask.palletsprojects.com/en/stable/", None),
])
def test_version_in_url(url: str, version: str | None) -> None:
    assert version_in_url(url) == version


def test_default_names_leave_out_the_version_segment() -> None:
    assert without_version("https://docs.djangoproject.com/en/4.2/") == "https://docs.djangoproject.com/en/"


def test_versions_stated_by_pages() -> None:
    sphinx = (VERSIONED / "en" / "2.3" / "quickstart.html").read_text(encoding="utf-8")
    assert version_in_page(sphinx) == "2.3"  # DOCUMENTATION_OPTIONS.VERSION
    assert version_in_page((SPHINX / "quickstart.html").read_text(encoding="utf-8")) == "2.4"  # title suffix
    assert version_in_page('<html><head><meta name="docsearch:version" content="3.1"></head></html>') == "3.1"
    assert version_in_page('<html class="docs-version-2.0 plugin-docs"><head></head></html>') == "2.0"
    assert version_in_page('<html class="docs-version-current"><head><title>Intro</title></head></html>') is None
    assert version_in_page("# Widgets 2.4\n\n> The widgets toolkit.\n") == "2.4"  # an llms.txt header
    assert version_in_page((DOCUSAURUS / "index.html").read_text(encoding="utf-8")) is None


def test_the_project_a_site_names_in_its_titles() -> None:
    from docshelf.crawl.version import project_in_page

    assert project_in_page((SPHINX / "quickstart.html").read_text(encoding="utf-8")) == "Widgets"
    assert project_in_page("<html><head><title>Models | Django 4.2 docs</title></head></html>") == "Django"
    assert project_in_page("<html><head><title>Flask Documentation (2.2.x)</title></head></html>") is None


def test_mike_versions_json_resolves_an_alias() -> None:
    versions = '[{"version": "1.1", "title": "1.1", "aliases": ["latest"]}, {"version": "1.0", "aliases": []}]'
    assert version_in_mike(versions, "latest") == "1.1"
    assert version_in_mike(versions, "dev") is None
    assert version_in_mike("not json", "latest") is None


def test_mike_alias_is_detected_through_the_site(tmp_path: Path) -> None:
    import asyncio

    from docshelf.crawl.version import detect_version

    site = tmp_path / "site"
    (site / "latest").mkdir(parents=True)
    (site / "latest" / "index.html").write_text("<html><head><title>Home</title></head><body>Hi</body></html>")
    (site / "versions.json").write_text('[{"version": "1.1", "title": "1.1", "aliases": ["latest"]}]')
    with Server(site) as server:
        assert asyncio.run(detect_version(server.url("/latest/"))) == "1.1"


# -- crawled into one source, on both backends -------------------------------------------------
@pytest.fixture
def versioned_shelf(shelf_location: str) -> Iterator[tuple[Store, str]]:
    store = open_store(shelf_location)
    ingestor = Ingestor(store, lambda: get_embedder(None))
    with Server(VERSIONED) as server:
        for version in ("2.2", "2.3", "2.4"):
            summary = ingestor.add(server.url(f"/en/{version}/"), source="widgets")
            assert summary.source == f"widgets@{version}" and summary.pages_failed == 0
        yield store, server.base
    store.close()


def test_versions_of_one_source_search_apart(versioned_shelf: tuple[Store, str]) -> None:
    store, base = versioned_shelf
    assert store.source_names() == ["widgets@2.2", "widgets@2.3", "widgets@2.4"]
    assert store.get_source("widgets@2.4").packages == ["widgets"]  # the project the site's titles name
    searcher = HybridSearcher(store, lambda: get_embedder(None))

    # Without a version: the newest, where the feature exists.
    hits = searcher.search("telemetry firehose stream events", k=3)
    assert hits[0].page_url == f"{base}/en/2.4/streaming.html" and hits[0].version == "2.4"
    assert hits[0].fetched_at and hits[0].changed_at

    # @old never returns a page of another version.
    for query in ("telemetry firehose stream events", "gearbox pipeline", "registering widgets"):
        old = searcher.search(query, k=10, sources=["widgets@2.3"])
        assert old and all("/en/2.3/" in h.url and h.version == "2.3" for h in old)

    # Searching several versions at once: one page is one hit, whichever version ranks it best.
    every = searcher.search("gearbox pipeline widget tree", k=10, sources=["widgets@2.2", "widgets@2.3", "widgets@2.4"])
    keys = [same_page_key(h.page_url, h.version) for h in every]
    assert len(keys) == len(set(keys)) and len({h.version for h in every}) >= 1


def test_pinned_version_and_unknown_version(versioned_shelf: tuple[Store, str]) -> None:
    store, _ = versioned_shelf
    pinned = HybridSearcher(store, lambda: get_embedder(None), pins={"widgets": "2.2"})
    assert {h.version for h in pinned.search("gearbox pipeline", k=5, mode="bm25")} == {"2.2"}
    tools = ShelfTools(store, HybridSearcher(store, lambda: get_embedder(None)))
    with pytest.raises(UnknownVersionError, match="it has: 2.4, 2.3, 2.2"):
        tools.search_docs("gearbox", "widgets", version="9.9")
    found = tools.search_docs("gearbox pipeline", "widgets", version="2.3").to_markdown()
    assert "widgets 2.3 · fetched " in found and "/en/2.4/" not in found


def test_the_release_notes_rule_never_demotes_a_page_for_its_other_versions(versioned_shelf: tuple[Store, str]) -> None:
    store, base = versioned_shelf
    # "Widgets 2.2", "Widgets 2.3", "Widgets 2.4": three titles alike but for a version — one page per version.
    fronts = [f"{base}/en/{v}/" for v in ("2.2", "2.3", "2.4")]
    assert [store.get_page(url).title for url in fronts] == ["Widgets 2.2", "Widgets 2.3", "Widgets 2.4"]
    assert store.page_priors(fronts) == dict.fromkeys(fronts, 1.0)


def test_removing_one_version_leaves_the_others(versioned_shelf: tuple[Store, str]) -> None:
    store, base = versioned_shelf
    before = store.count_pages("widgets@2.4")
    assert store.remove_source("widgets@2.3") == 4
    assert store.source_names() == ["widgets@2.2", "widgets@2.4"]
    assert store.count_pages("widgets@2.4") == before == 5 and store.count_pages("widgets@2.2") == 4
    assert store.get_page(f"{base}/en/2.3/quickstart.html") is None


def test_cli_versions_search_rm_and_errors(tmp_path: Path) -> None:
    db = str(tmp_path / "shelf.db")
    runner = CliRunner()
    with Server(VERSIONED) as server:
        for version in ("2.3", "2.4"):
            result = runner.invoke(cli, ["--db", db, "add", server.url(f"/en/{version}/"), "--source", "widgets", "--json"])
            assert result.exit_code == 0, result.output
        # --version states it whatever the site says
        result = runner.invoke(cli, ["--db", db, "add", server.url("/en/2.2/"), "--source", "w", "--version", "2.2.1",
                                     "--json"])
        assert result.exit_code == 0 and '"source": "w@2.2.1"' in result.output
    listed = runner.invoke(cli, ["--db", db, "sources", "--json"]).output
    assert '"version": "2.3"' in listed and '"version": "2.4"' in listed and '"age": "now"' in listed
    table = runner.invoke(cli, ["--db", db, "sources"], env={"COLUMNS": "250"}).output
    assert "2.4 (newest)" in table and " 2.3 " in table

    out = runner.invoke(cli, ["--db", db, "search", "gearbox pipeline", "--source", "widgets@2.3", "-k", "3"]).output
    assert "widgets 2.3 · fetched " in out and "/en/2.4/" not in out
    bad = runner.invoke(cli, ["--db", db, "search", "gearbox", "--source", "widgets@9.9"])
    assert bad.exit_code == 2 and "it has: 2.4, 2.3" in bad.output

    ambiguous = runner.invoke(cli, ["--db", db, "rm", "widgets"])
    assert ambiguous.exit_code == 2 and "several versions on the shelf (2.4, 2.3); name one as widgets@VERSION" \
        in ambiguous.output
    assert runner.invoke(cli, ["--db", db, "rm", "widgets@2.3"]).exit_code == 0
    assert runner.invoke(cli, ["--db", db, "rm", "widgets"]).exit_code == 0  # the last version: the source goes
    assert "widgets" not in runner.invoke(cli, ["--db", db, "sources", "--json"]).output

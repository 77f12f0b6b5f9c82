"""What only the SQLite shelf has: a WAL file, its migrations table, file-path errors, FTS5 query text.

Behaviour shared with PostgreSQL is tested once for both in test_store.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from docshelf.errors import StoreError
from docshelf.models import Source
from docshelf.store.fts import match_expression, query_terms
from docshelf.store.migrations import MIGRATIONS, m010_inbound_text, m011_inbound_fts
from docshelf.store.sqlite import SQLiteStore, identifier_parts
from store.shelves import DIM, make_page


@pytest.fixture
def sqlite_store(db_path: Path):
    s = SQLiteStore(db_path)
    s.bind_embedder("test:model", DIM)
    s.upsert_source(Source(name="s1", root="http://example.test/"))
    yield s
    s.close()


def test_wal_file_appears_and_schema_is_recorded(sqlite_store: SQLiteStore, db_path: Path) -> None:
    page, chunks, hashes = make_page("http://example.test/a", ["alpha text"])
    sqlite_store.replace_page(page, chunks, hashes)
    assert Path(str(db_path) + "-wal").exists()
    names = [r[0] for r in sqlite_store.conn.execute("SELECT name FROM migrations")]
    assert names == [name for name, _ in MIGRATIONS]
    assert names[:3] == ["m001_initial", "m002_page_prior", "m003_record_texts"]


def test_query_terms_keep_identifiers_and_drop_stopwords() -> None:
    assert query_terms("How do I use os.makedirs with exist_ok?") == ["os.makedirs", "exist_ok"]
    assert match_expression("the a of") is None
    assert match_expression('say "hi"') == '"say" OR "hi"'


def test_identifier_parts() -> None:
    assert identifier_parts("exist_ok and getJson") == "exist ok get json"


def test_bad_paths_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="is a folder"):
        SQLiteStore(tmp_path)
    with pytest.raises(StoreError, match="does not exist"):
        SQLiteStore(tmp_path / "missing" / "shelf.db")
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="docshelf SQLite file"):
        SQLiteStore(junk)


def test_m002_backfills_priors_of_a_shelf_built_before_it(db_path: Path) -> None:
    import apsw

    from docshelf.store.migrations import m001_initial

    conn = apsw.Connection(str(db_path))
    conn.execute("CREATE TABLE migrations(name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    m001_initial(conn)
    conn.execute("INSERT INTO migrations VALUES ('m001_initial', '2026-01-01')")
    conn.execute("INSERT INTO sources(name, root, created_at) VALUES ('s', 'http://x/', '2026-01-01')")
    index = "# Index\n\n" + "".join(f"- [entry {i}](http://x/{i}.html)\n" for i in range(30))
    for url, markdown in (("http://x/genindex.html", index), ("http://x/guide.html", "# Guide\n\nPlain prose.\n")):
        conn.execute("INSERT INTO pages(url, source, markdown, fetched_at, status) VALUES (?, 's', ?, 'now', 'ok')",
                     (url, markdown))
    conn.close()
    store = SQLiteStore(db_path)
    assert store.page_priors(["http://x/genindex.html", "http://x/guide.html"]) == {
        "http://x/genindex.html": 0.5, "http://x/guide.html": 1.0}
    store.close()


def test_m003_keeps_record_texts_a_shelf_created_on_first_import(db_path: Path) -> None:
    import apsw

    from docshelf.store.migrations import m001_initial, m002_page_prior

    conn = apsw.Connection(str(db_path))
    conn.execute("CREATE TABLE migrations(name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    m001_initial(conn)
    m002_page_prior(conn)
    conn.execute("INSERT INTO migrations VALUES ('m001_initial', '2026-01-01'), ('m002_page_prior', '2026-01-01')")
    conn.execute("CREATE TABLE record_texts(url TEXT NOT NULL, chunk_number INTEGER NOT NULL, embedding TEXT, "
                 "metadata TEXT, PRIMARY KEY (url, chunk_number))")
    conn.execute("INSERT INTO record_texts VALUES ('http://x/a', 0, '[0.10]', '{}')")
    conn.close()
    store = SQLiteStore(db_path)
    assert list(store.conn.execute("SELECT url, embedding FROM record_texts")) == [("http://x/a", "[0.10]")]
    assert "m003_record_texts" in [r[0] for r in store.conn.execute("SELECT name FROM migrations")]
    store.close()


NESTED_CHANGELOG = "# 1.4 Changelog\n\n" + "".join(
    f"## 1.4.{i}\n\n" + "".join(f"### {part}\n\n- Fixed a bug.\n\n" for part in ("orm", "sql", "engine"))
    for i in range(6))
WHATS_NEW = "# What's new in 1.4\n\n" + "".join(
    f"## Faster {word}\n\nThe {word} is faster now.\n\n[#{100 + i}](http://tracker/{100 + i})\n\n"
    for i, word in enumerate(("session", "query", "pool", "mapper", "cursor", "engine")))


def test_m007_demotes_per_version_pages(db_path: Path) -> None:
    import apsw

    store = SQLiteStore(db_path)
    store.close()
    conn = apsw.Connection(str(db_path))
    conn.execute("DELETE FROM migrations WHERE name = 'm007_version_series'")
    conn.execute("INSERT INTO sources(name, root, created_at) VALUES ('s', 'http://x/', '2026-01-01')")
    titles = {"http://x/r/3_40_1.html": "Widgets Release 3.40.1 On 2022-12-28",
              "http://x/r/3_40_0.html": "Widgets Release 3.40.0 On 2022-11-16",
              "http://x/r/3_39_4.html": "Widgets Release 3.39.4 On 2022-09-29",
              "http://x/tutorial.html": "Widgets 3.40 Tutorial"}
    for url, title in titles.items():
        conn.execute("INSERT INTO pages(url, source, title, markdown, fetched_at, status, prior) "
                     "VALUES (?, 's', ?, '# x', 'now', 'ok', 1.0)", (url, title))
    conn.close()
    store = SQLiteStore(db_path)
    assert store.page_priors(list(titles)) == {
        "http://x/r/3_40_1.html": 0.5, "http://x/r/3_40_0.html": 0.5, "http://x/r/3_39_4.html": 0.5,
        "http://x/tutorial.html": 1.0}
    store.close()


# A module index as a table of links, as Sphinx renders it: padded cells, no list items.
MODULE_INDEX = "# Module index\n\n| | |\n| --- | --- |\n" + "".join(
    f"| [`widgets.{name}`](http://x/{name}.html)          | |\n" for name in ("core", "cache", "render", "layout", "io"))


@pytest.mark.parametrize(("migration", "markdown"), [
    ("m005_release_notes_by_level", NESTED_CHANGELOG),
    ("m006_release_notes_citing_issues", WHATS_NEW),
    ("m009_navigation_by_entries", MODULE_INDEX),
])
def test_migration_recomputes_priors(db_path: Path, migration: str, markdown: str) -> None:
    import apsw

    store = SQLiteStore(db_path)
    store.close()
    conn = apsw.Connection(str(db_path))
    conn.execute("DELETE FROM migrations WHERE name = ?", (migration,))
    conn.execute("INSERT INTO sources(name, root, created_at) VALUES ('s', 'http://x/', '2026-01-01')")
    conn.execute("INSERT INTO pages(url, source, markdown, fetched_at, status, prior) "
                 "VALUES ('http://x/changelog_14.html', 's', ?, 'now', 'ok', 1.0)", (markdown,))
    conn.close()
    store = SQLiteStore(db_path)
    assert store.page_priors(["http://x/changelog_14.html"]) == {"http://x/changelog_14.html": 0.5}
    store.close()


def test_m008_reindexes_a_shelf_built_before_it_with_an_inbound_column(db_path: Path) -> None:
    import apsw

    conn = apsw.Connection(str(db_path))
    conn.execute("CREATE TABLE migrations(name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    for name, migration in MIGRATIONS[: MIGRATIONS.index(("m010_inbound_text", m010_inbound_text))]:
        migration(conn)
        conn.execute("INSERT INTO migrations VALUES (?, '2026-01-01')", (name,))
    conn.execute("INSERT INTO sources(name, root, created_at) VALUES ('s1', 'http://x/', '2026-01-01')")
    conn.execute("INSERT INTO pages(url, source, title, markdown, fetched_at, status) "
                 "VALUES ('http://x/a', 's1', 'Widget Guide', '# Setup', 'now', 'ok')")
    conn.execute("INSERT INTO chunks(id, url, source, chunk_number, title, summary, content, heading_path, embed_hash) "
                 "VALUES (7, 'http://x/a', 's1', 0, 't', 's', 'Call make_widget once.', '[\"Setup\"]', 'h')")
    conn.execute("INSERT INTO chunks_fts(rowid, title, headings, body) VALUES (7, 'Widget Guide', 'Setup', 'x')")
    conn.close()

    store = SQLiteStore(db_path)
    # indexed again from the chunk, as a new chunk is: page title, headings, body with identifier parts
    for query in ("widget guide", "setup", "make widget"):
        assert [i for i, _ in store.search_bm25(query)] == [7], query
    assert store.set_inbound_text("s1", {7: "caching"}) == 1
    assert [i for i, _ in store.search_bm25("caching")] == [7]
    store.close()


def test_inbound_weight_is_a_search_setting(sqlite_store: SQLiteStore) -> None:
    page, chunks, hashes = make_page("http://example.test/a", ["Send the stored ETag."])
    sqlite_store.replace_page(page, chunks, hashes)
    [(chunk_id, _)] = sqlite_store.source_chunks("s1")
    sqlite_store.set_inbound_text("s1", {chunk_id: "caching"})
    assert sqlite_store.search_bm25("caching")
    sqlite_store.bm25_weights = (*sqlite_store.bm25_weights[:3], 0.0)
    assert sqlite_store.search_bm25("caching") == []  # weight 0: the inbound table is off, not a candidate scored 0
    assert sqlite_store.search_bm25("stored ETag caching")


def test_long_inbound_text_does_not_lower_a_chunks_body_score(sqlite_store: SQLiteStore) -> None:
    # Two pages with the same body; the site's index points at the first with many entries.
    for url in ("http://example.test/a", "http://example.test/b"):
        page, chunks, hashes = make_page(url, ["Send the stored ETag with If-None-Match."])
        sqlite_store.replace_page(page, chunks, hashes)
    by_url = {chunk.url: chunk_id for chunk_id, chunk in sqlite_store.source_chunks("s1")}
    entries = "\n".join(f"entry {n} of the general index" for n in range(200))
    sqlite_store.set_inbound_text("s1", {by_url["http://example.test/a"]: entries})
    scores = dict(sqlite_store.search_bm25("stored ETag"))
    # In one full-text row, the 1 400 inbound words made chunk a's row long and its body match weak.
    assert scores[by_url["http://example.test/a"]] == pytest.approx(scores[by_url["http://example.test/b"]])
    # and the inbound words still find it, adding to the body's score when both match
    assert [i for i, _ in sqlite_store.search_bm25("general index")] == [by_url["http://example.test/a"]]
    both = dict(sqlite_store.search_bm25("stored ETag general index"))
    assert both[by_url["http://example.test/a"]] > both[by_url["http://example.test/b"]]


def test_m011_moves_inbound_text_to_its_own_table(db_path: Path) -> None:
    import apsw

    conn = apsw.Connection(str(db_path))
    conn.execute("CREATE TABLE migrations(name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    for name, migration in MIGRATIONS[: MIGRATIONS.index(("m011_inbound_fts", m011_inbound_fts))]:
        migration(conn)
        conn.execute("INSERT INTO migrations VALUES (?, '2026-01-01')", (name,))
    conn.execute("INSERT INTO sources(name, root, created_at) VALUES ('s1', 'http://x/', '2026-01-01')")
    conn.execute("INSERT INTO pages(url, source, title, markdown, fetched_at, status) "
                 "VALUES ('http://x/a', 's1', 'Widget Guide', '# Setup', 'now', 'ok')")
    conn.execute("INSERT INTO chunks(id, url, source, chunk_number, title, summary, content, heading_path, embed_hash,"
                 " inbound) VALUES (7, 'http://x/a', 's1', 0, 't', 's', 'Call make_widget once.', '[\"Setup\"]', 'h',"
                 " 'caching, conditional_get')")
    conn.execute("INSERT INTO chunks_fts(rowid, title, headings, body, inbound) "
                 "VALUES (7, 'Widget Guide', 'Setup', 'x', 'caching, conditional_get')")
    conn.close()

    store = SQLiteStore(db_path)
    for query in ("widget guide", "setup", "make widget", "caching", "conditional get"):
        assert [i for i, _ in store.search_bm25(query)] == [7], query
    assert store.conn.execute("SELECT count(*) FROM inbound_fts").fetchone() == (1,)
    store.close()

"""What the Store protocol gained for versions and freshness, on both backends, and the migration of older shelves."""

from __future__ import annotations

from pathlib import Path

import psycopg

from docshelf.models import PageChange, Source
from docshelf.store.base import Store
from docshelf.store.migrations import MIGRATIONS
from docshelf.store.sqlite import SQLiteStore
from store.shelves import make_page


def test_a_versioned_source_keeps_its_version_and_packages(store: Store) -> None:
    store.upsert_source(Source("django@4.2", "https://d.org/en/4.2/", packages=["django"]))
    stored = store.get_source("django@4.2")
    assert stored.version == "4.2" and stored.base_name == "django" and stored.packages == ["django"]
    store.set_source_packages("django@4.2", ["django", "Django-stubs"])
    assert store.get_source("django@4.2").packages == ["django", "Django-stubs"]
    assert store.source_names() == ["django@4.2", "s1", "s2"]
    assert {s.source.name: s.source.version for s in store.list_sources()}["django@4.2"] == "4.2"


def test_pages_keep_links_and_when_they_last_changed(store: Store) -> None:
    page, chunks, hashes = make_page("http://example.test/a", ["Alpha"])
    page.links = ["http://example.test/b"]
    page.fetched_at = page_time = "2026-11-20T10:00:00+00:00"
    store.replace_page(page, chunks, hashes)
    store.touch_page(page.url, "2026-12-01T10:00:00+00:00")
    dates = store.page_freshness([page.url, "http://example.test/none"])
    assert list(dates) == [page.url]
    assert dates[page.url].fetched_at.startswith("2026-12-01") and dates[page.url].changed_at == page_time
    assert store.get_page(page.url).changed_at == page_time
    assert store.page_links("s1") == {page.url: ["http://example.test/b"]}
    failed = make_page("http://example.test/a", ["x"])[0]
    failed.status, failed.error = "failed", "HTTP 500"
    store.record_failure(failed)  # a failure keeps what the page had
    assert store.page_links("s1") == {page.url: ["http://example.test/b"]}
    assert store.page_freshness([page.url])[page.url].changed_at == page_time


def test_the_change_log_by_source_and_date_and_removed_with_the_source(store: Store) -> None:
    store.record_changes([
        PageChange("s1", "http://example.test/a", "changed", "2026-11-20T10:00:00+00:00", 3),
        PageChange("s1", "http://example.test/b", "added", "2026-12-02T10:00:00+00:00"),
        PageChange("s2", "http://other.test/c", "removed", "2026-12-02T10:00:00+00:00"),
    ])
    assert [(c.url[-1], c.change, c.diff_lines) for c in store.list_changes("s1")] == [("a", "changed", 3), ("b", "added", 0)]
    assert [c.url[-1] for c in store.list_changes("s1", since="2026-12-01")] == ["b"]
    store.remove_source("s1")
    assert store.list_changes("s1") == [] and len(store.list_changes("s2")) == 1


def test_a_shelf_from_before_versions_opens_unversioned_with_nothing_lost(db_path: Path) -> None:
    import apsw

    conn = apsw.Connection(str(db_path))
    conn.execute("CREATE TABLE migrations(name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    for name, migration in [m for m in MIGRATIONS if m[0] != "m012_versions_and_freshness"]:
        migration(conn)
        conn.execute("INSERT INTO migrations VALUES (?, '2026-01-01')", (name,))
    conn.execute("INSERT INTO sources(name, root, created_at) VALUES ('flask', 'http://x/', '2026-01-01')")
    conn.execute("INSERT INTO pages(url, source, title, markdown, fetched_at, status) "
                 "VALUES ('http://x/a', 'flask', 'Guide', '# Setup', '2026-11-01T00:00:00+00:00', 'ok')")
    conn.close()

    store = SQLiteStore(db_path)
    flask = store.get_source("flask")
    assert flask.version == "" and flask.packages == [] and store.count_pages("flask") == 1
    assert store.get_page("http://x/a").changed_at == "2026-11-01T00:00:00+00:00"  # its last fetch, the best known
    store.close()


def test_a_postgres_shelf_from_before_versions_opens_unversioned(pg_dsn: str) -> None:
    from docshelf.store.pg_migrations import apply_migrations
    from docshelf.store.postgres import PostgresStore

    store = PostgresStore(pg_dsn)
    store.upsert_source(Source("flask", "http://x/"))
    page, chunks, hashes = make_page("http://x/a", ["Setup"], source="flask")
    store.replace_page(page, chunks, hashes)
    with psycopg.connect(pg_dsn, autocommit=True) as conn:  # as the shelf was before m014
        conn.execute("DELETE FROM docshelf_migrations WHERE name = 'm014_versions_and_freshness'")
        conn.execute("DROP TABLE docshelf_page_changes")
        conn.execute("ALTER TABLE docshelf_sources DROP COLUMN version, DROP COLUMN packages")
        conn.execute("ALTER TABLE docshelf_pages DROP COLUMN changed_at, DROP COLUMN links")
        assert apply_migrations(conn) == ["m014_versions_and_freshness"]
    assert store.get_source("flask").version == "" and store.count_pages("flask") == 1
    assert store.get_page("http://x/a").changed_at == page.fetched_at
    store.close()

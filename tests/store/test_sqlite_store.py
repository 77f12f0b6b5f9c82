"""What only the SQLite shelf has: a WAL file, its migrations table, file-path errors, FTS5 query text.

Behaviour shared with PostgreSQL is tested once for both in test_store.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from docshelf.errors import StoreError
from docshelf.models import Source
from docshelf.store.fts import match_expression, query_terms
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
    assert names == ["m001_initial"]


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

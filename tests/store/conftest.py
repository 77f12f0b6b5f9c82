"""Store fixtures: one `store` parametrised over SQLite and PostgreSQL, and a fresh PostgreSQL database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from docshelf.models import Source
from docshelf.store.base import Store
from store import shelves
from store.shelves import DIM, open_shelf

pg_dsn = shelves.pg_dsn
shelf_location = shelves.shelf_location


@pytest.fixture
def store(shelf_location: str) -> Iterator[Store]:
    """A shelf bound to an 8-dim test model, with sources s1 and s2, on each backend."""
    s = open_shelf(shelf_location)
    s.bind_embedder("test:model", DIM)
    s.upsert_source(Source(name="s1", root="http://example.test/"))
    s.upsert_source(Source(name="s2", root="http://other.test/"))
    yield s
    s.close()

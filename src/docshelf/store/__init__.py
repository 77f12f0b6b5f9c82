"""Shelf backends behind one `Store` protocol; `open_store` picks one from a --db value."""

from __future__ import annotations

from docshelf.errors import ConfigError
from docshelf.store.base import Store


def open_store(db: str) -> Store:
    """Return the shelf at `db`: a SQLite file path, or a postgresql:// URL.

    Raises:
        ConfigError: the backend is not installed, or the location cannot be used.
    """
    if db.startswith(("postgresql://", "postgres://")):
        raise ConfigError(f"--db {db.split('@')[-1]}: the PostgreSQL shelf is not available in this version yet")
    from docshelf.store.sqlite import SQLiteStore

    return SQLiteStore(db)


__all__ = ["Store", "open_store"]

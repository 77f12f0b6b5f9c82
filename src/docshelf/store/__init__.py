"""Shelf backends behind one `Store` protocol; `open_store` picks one from a --db value."""

from __future__ import annotations

from docshelf.errors import ConfigError
from docshelf.store.base import Store

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def open_store(db: str) -> Store:
    """Return the shelf at `db`: a SQLite file path, or a postgresql:// URL.

    Raises:
        ConfigError: the backend is not installed, or the location cannot be used.
    """
    if db.startswith(POSTGRES_SCHEMES):
        try:
            from docshelf.store.postgres import PostgresStore
        except ImportError as exc:
            raise ConfigError(
                f"--db {db.split('@')[-1]}: the PostgreSQL shelf is not installed: pip install 'docshelf[postgres]'"
            ) from exc
        return PostgresStore(db)
    from docshelf.store.sqlite import SQLiteStore

    return SQLiteStore(db)


__all__ = ["Store", "open_store"]

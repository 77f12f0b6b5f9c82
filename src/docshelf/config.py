"""Settings from the environment, as data: each has a name, a default and a help line."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs


@dataclass(frozen=True)
class Setting:
    """One environment setting docshelf reads."""

    name: str
    default: str | None
    help: str


SETTINGS: tuple[Setting, ...] = (
    Setting("DOCSHELF_HOME", None, "Folder for docshelf's own files; default: the user data dir (platformdirs)."),
    Setting("DOCSHELF_DB", None, "The shelf: a SQLite file path. Default: shelf.db in DOCSHELF_HOME."),
    Setting("DOCSHELF_EMBEDDER", "local:all-MiniLM-L6-v2", "Embedding model for new shelves."),
    Setting("DOCSHELF_EMBED_BASE_URL", None, "Base URL of an OpenAI-compatible /v1/embeddings server."),
    Setting("DOCSHELF_EMBED_API_KEY", None, "API key for that server (falls back to OPENAI_API_KEY)."),
)


def setting(name: str) -> str | None:
    """Return the value of a setting from the environment, or its default."""
    for s in SETTINGS:
        if s.name == name:
            return os.environ.get(name) or s.default
    raise KeyError(name)


def home() -> Path:
    """Return docshelf's home folder (DOCSHELF_HOME or the platform's user data dir), creating it."""
    path = Path(setting("DOCSHELF_HOME") or platformdirs.user_data_dir("docshelf", appauthor=False))
    path.mkdir(parents=True, exist_ok=True)
    return path


def default_db() -> str:
    """Return the shelf location used when --db is not given."""
    return setting("DOCSHELF_DB") or str(home() / "shelf.db")

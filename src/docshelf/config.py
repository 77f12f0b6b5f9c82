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
    Setting("DOCSHELF_DB", None, "The shelf: a SQLite file path or a postgresql:// URL. Default: shelf.db in DOCSHELF_HOME."),
    Setting("DOCSHELF_EMBEDDER", "local:all-MiniLM-L6-v2", "Embedding model for new shelves."),
    Setting("DOCSHELF_EMBED_BASE_URL", None, "Base URL of an OpenAI-compatible /v1/embeddings server."),
    Setting("DOCSHELF_EMBED_API_KEY", None, "API key for that server (falls back to OPENAI_API_KEY)."),
    Setting("DOCSHELF_LLM_MODEL", None,
            "Model for ask/chat: a Pydantic AI model string (openai:gpt-4o-mini, anthropic:…, google-gla:…, "
            "groq:…) or the model's name on DOCSHELF_LLM_BASE_URL. Unset: ask answers with cited passages."),
    Setting("DOCSHELF_LLM_BASE_URL", None,
            "Base URL of an OpenAI-compatible chat server (Ollama, vLLM, LM Studio, llama.cpp), e.g. "
            "http://127.0.0.1:11434/v1."),
    Setting("DOCSHELF_LLM_API_KEY", None, "API key for that server (falls back to OPENAI_API_KEY; local servers need none)."),
    Setting("DOCSHELF_LLM_MAX_RETRIES", "3", "Retries of a model request on 429/5xx/timeouts, honouring Retry-After."),
    Setting("DOCSHELF_LLM_TIMEOUT", "120", "Seconds before a model request times out."),
    Setting("DOCSHELF_ASK_TOOL_CALLS", "12", "Tool calls (searches, page reads) the ask agent may make per question."),
    Setting("DOCSHELF_TOKEN", None,
            "Token `docshelf serve` requires of every request (Bearer header or the login form); needed to serve "
            "on any address but 127.0.0.1."),
    Setting("DOCSHELF_CONTEXT_TOKENIZER", "o200k_base",
            "Tokenizer that counts the tokens of answers against an agent's budget (max_tokens): o200k_base "
            "(bundled, offline) or hf:/path/to/tokenizer.json."),
    Setting("DOCSHELF_ALLOW_HOSTS", None,
            "Private networks and host names crawls may reach, e.g. 10.0.0.0/8,docs.internal (--allow-hosts). "
            "Unset: `serve` and `mcp` refuse every private address for crawls their clients start, and "
            "`add` only trusts the host it was given."),
    Setting("DOCSHELF_ENRICH_CONCURRENCY", "4",
            "Model requests in flight at once while `add --enrich llm` or `enrich` writes titles and summaries."),
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

"""Embedders by name: `local:all-MiniLM-L6-v2` (the default) or `openai:<model>`.

Each provider is a factory in one dict, the built-in ones registered the way
another would be. A factory imports its module only when it is chosen, so
naming the OpenAI embedder never loads onnxruntime and vice versa.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from docshelf.embed.base import Embedder
from docshelf.errors import ConfigError

DEFAULT_EMBEDDER = "local:all-MiniLM-L6-v2"
ALIASES = {"local": DEFAULT_EMBEDDER, "minilm": DEFAULT_EMBEDDER}
KNOWN = f"{DEFAULT_EMBEDDER} (aliases: {', '.join(ALIASES)}), openai:<model>"


def get_embedder(name: str | None = None, **options: Any) -> Embedder:
    """Return the embedder called `name` (default `local:all-MiniLM-L6-v2`), built with `options`.

    Args:
        name: `local:all-MiniLM-L6-v2` (or `local`, `minilm`), or `openai:<model>`
            for any OpenAI-compatible server; that one reads DOCSHELF_EMBED_BASE_URL
            and DOCSHELF_EMBED_API_KEY (else OPENAI_API_KEY) unless `options` say
            otherwise. Every embedder's `model_id` is a name that gives it back.
        **options: Keyword arguments for the embedder's class (`threads=1`, `dim=768`, ...).

    Raises:
        ConfigError: the name is unknown, or the options do not fit its embedder.
    """
    full_name = ALIASES.get(name or DEFAULT_EMBEDDER, name or DEFAULT_EMBEDDER)
    provider, _, model = full_name.partition(":")
    factory = _FACTORIES.get(provider)
    if factory is None or not model:
        raise ConfigError(f"unknown embedder {name!r}; known: {KNOWN}")
    try:
        return factory(model, options)
    except TypeError as exc:
        raise ConfigError(f"bad option for embedder {full_name!r}: {exc}") from exc


def _local(model: str, options: dict[str, Any]) -> Embedder:
    """Return the bundled embedder; it is the only local model."""
    from docshelf.embed.local import LocalMiniLM

    if f"local:{model}" != LocalMiniLM.model_id:
        raise ConfigError(f"unknown embedder 'local:{model}'; known: {KNOWN}")
    return LocalMiniLM(**options)


def _openai(model: str, options: dict[str, Any]) -> Embedder:
    """Return an OpenAI-compatible embedder, its server and key taken from the environment by default.

    `model` may end in `@<host[:port]>`, as the `model_id` of an embedder off
    OpenAI does; the configured base URL must then point to that host.
    """
    from docshelf.embed.openai import OPENAI_BASE_URL, OpenAICompatibleEmbedder

    options.setdefault("base_url", os.environ.get("DOCSHELF_EMBED_BASE_URL") or OPENAI_BASE_URL)
    options.setdefault(
        "api_key", os.environ.get("DOCSHELF_EMBED_API_KEY") or os.environ.get("OPENAI_API_KEY")
    )
    if options["base_url"] == OPENAI_BASE_URL and not options["api_key"]:
        # Fail before any request: without a key every call would be retried and then refused.
        raise ConfigError(
            f"embedder openai:{model} needs an API key: set DOCSHELF_EMBED_API_KEY (or OPENAI_API_KEY), "
            "or point DOCSHELF_EMBED_BASE_URL at a compatible server; a shelf built with it can still be "
            "searched with --mode bm25, or re-embedded locally with `docshelf import --reembed`"
        )
    name, _, host = model.partition("@")
    embedder = OpenAICompatibleEmbedder(name, **options)
    if host and embedder.model_id != f"openai:{model}":
        embedder.close()
        raise ConfigError(
            f"embedder 'openai:{model}' is served from {host}, but the base URL is {embedder.base_url}; "
            f"set DOCSHELF_EMBED_BASE_URL to that server's API root, e.g. http://{host}/v1"
        )
    return embedder


_FACTORIES: dict[str, Callable[[str, dict[str, Any]], Embedder]] = {"local": _local, "openai": _openai}

"""docshelf: documentation sites into a searchable, citable knowledge base.

The library API the CLI, the agent, the MCP server and the HTTP API call:

    from docshelf import open_store, Ingestor, HybridSearcher, get_embedder

    store = open_store("shelf.db")
    Ingestor(store, get_embedder).add("https://docs.example.org/")
    hits = HybridSearcher(store, get_embedder).search("how do I stream a response", k=5)

Names are imported on first use, so `import docshelf` (and `docshelf --help`)
loads no model runtime or network stack.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "open_store": "docshelf.store",
    "Store": "docshelf.store.base",
    "Ingestor": "docshelf.ingest",
    "IngestSummary": "docshelf.ingest",
    "HybridSearcher": "docshelf.search",
    "FusionSettings": "docshelf.search",
    "CrawlOptions": "docshelf.crawl.base",
    "get_embedder": "docshelf.embed",
    "Embedder": "docshelf.embed.base",
    "Source": "docshelf.models",
    "Page": "docshelf.models",
    "Chunk": "docshelf.models",
    "SearchHit": "docshelf.models",
    "DocshelfError": "docshelf.errors",
    "ConfigError": "docshelf.errors",
    "StoreError": "docshelf.errors",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'docshelf' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value

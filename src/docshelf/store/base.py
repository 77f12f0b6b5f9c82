"""The Store protocol: everything the pipeline, search and front ends ask of a shelf.

A shelf holds sources; a source holds pages; a page holds chunks; a chunk may
have a vector. Chunk ids are the backend's integer row ids, stable until the
page is replaced.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from docshelf.models import (
    Chunk,
    Enrichment,
    Freshness,
    Page,
    PageChange,
    PageInfo,
    SectionStart,
    Source,
    SourceStats,
)

NOT_EMBEDDED = ""
"""The embed hash of a chunk that is never embedded (generated navigation: searchable by BM25 only)."""


def sections_json(chunk: Chunk) -> str | None:
    """Return a chunk's section starts as stored (JSON), or None for a chunk of one section."""
    return json.dumps([s.to_json() for s in chunk.sections], ensure_ascii=False) if chunk.sections else None


def sections_from_json(value: str | list | None) -> list[SectionStart]:
    """Return the section starts stored for a chunk (JSON text, or already decoded by the driver)."""
    if value is None:
        return []
    return [SectionStart.from_json(item) for item in (json.loads(value) if isinstance(value, str) else value)]


@dataclass
class SourcePage:
    """One page of a source written whole by `SourceReplacer.replace_source`: the page, its chunks, their vectors."""

    page: Page
    chunks: list[Chunk]
    embed_hashes: list[str]
    vectors: list[np.ndarray | None] = field(default_factory=list)
    """One per chunk (float32, the shelf's model), or None for a chunk left to embed; empty: none has one."""


@runtime_checkable
class SourceReplacer(Protocol):
    """A shelf that can replace a whole source in one transaction (what adding a pack needs)."""

    def replace_source(self, source: Source, pages: Sequence[SourcePage]) -> int:
        """Replace the source and all its pages, chunks and vectors with these, in one transaction.

        Pages the source had that are not in `pages` are removed. The shelf must already be bound to
        the vectors' model. Return how many chunks are left waiting for a vector.
        """
        ...


@runtime_checkable
class BulkLoader(Protocol):
    """A shelf whose indexes can be built once after many writes rather than kept up row by row."""

    def bulk_load(self) -> AbstractContextManager[None]:
        """Return a context in which to write many pages; the shelf decides what it is safe to defer."""
        ...


@runtime_checkable
class Store(Protocol):
    """A shelf backend (SQLite file, PostgreSQL database)."""

    location: str
    """Where the shelf lives (a path or a DSN without password), for messages."""

    # -- identity -------------------------------------------------------------
    def embedder_identity(self) -> tuple[str, int] | None:
        """Return (model_id, dim) the shelf was built with, or None for a new shelf."""
        ...

    def bind_embedder(self, model_id: str, dim: int) -> None:
        """Record the shelf's embedding model; raise ModelMismatchError if it holds another."""
        ...

    # -- sources --------------------------------------------------------------
    def upsert_source(self, source: Source) -> None: ...

    def get_source(self, name: str) -> Source | None: ...

    def list_sources(self) -> list[SourceStats]: ...

    def source_names(self) -> list[str]:
        """Return the key of every source on the shelf (`name` or `name@version`), sorted; cheap, no counts."""
        ...

    def remove_source(self, name: str) -> int:
        """Delete a source (one version: `name` is its key) with its pages, chunks, vectors and change log;
        return pages removed."""
        ...

    def set_source_packages(self, name: str, packages: Sequence[str]) -> None:
        """Record the packages a source (key) documents, replacing those it had."""
        ...

    # -- pages ----------------------------------------------------------------
    def page_states(self, source: str) -> dict[str, PageInfo]:
        """Return every page of a source by url (hash, ETag, Last-Modified, status)."""
        ...

    def replace_page(self, page: Page, chunks: Sequence[Chunk], embed_hashes: Sequence[str]) -> int:
        """Write a page and all its chunks in one transaction, replacing what was there.

        `embed_hashes[i]` is the hash of the text chunk i is embedded as, or NOT_EMBEDDED for
        a chunk that gets no vector. Vectors already stored for a hash are reused at once;
        return how many chunks are left waiting for a vector.
        """
        ...

    def write_pages(self, pages: Sequence[SourcePage]) -> int:
        """Write pages as `replace_page` does, each with its chunks and the vectors given, in one transaction.

        For writers that already hold the vectors (copy, import): a chunk written with its
        vector is written once, where `replace_page` then `store_embeddings` writes it twice
        (on PostgreSQL, into every index twice). A chunk given no vector reuses one already
        stored for its hash, as in `replace_page`. Return how many chunks are left waiting for a vector.
        """
        ...

    def record_failure(self, page: Page) -> None:
        """Record a failed or skipped page (status and error), keeping any chunks it had."""
        ...

    def touch_page(self, url: str, fetched_at: str) -> None:
        """Mark an unchanged page as seen now (its last change stays what it was)."""
        ...

    def page_links(self, source: str) -> dict[str, list[str]]:
        """Return the outgoing links stored with each page of a source that has them."""
        ...

    def page_freshness(self, urls: Sequence[str]) -> dict[str, Freshness]:
        """Return when each known page was last fetched and last changed."""
        ...

    def record_changes(self, changes: Sequence[PageChange]) -> None:
        """Append pages added, changed and removed by a refresh to their source's change log."""
        ...

    def list_changes(self, source: str, since: str | None = None) -> list[PageChange]:
        """Return a source's change log (key), oldest first, from `since` (an ISO date or time) when given."""
        ...

    def remove_pages(self, source: str, urls: Iterable[str]) -> int: ...

    def list_pages(
        self, source: str, prefix: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[PageInfo]: ...

    def count_pages(self, source: str, prefix: str | None = None) -> int: ...

    def get_page(self, url: str) -> PageInfo | None: ...

    def get_page_markdown(self, url: str) -> str | None: ...

    def get_chunks(self, url: str, start: int = 0, limit: int | None = None) -> list[Chunk]:
        """Return a page's chunks in order, from `start`, at most `limit`."""
        ...

    # -- vectors --------------------------------------------------------------
    def pending_embeddings(
        self, source: str | None = None, limit: int = 256, *, enriched_by: str | None = None
    ) -> list[tuple[str, Chunk]]:
        """Return up to `limit` (embed_hash, chunk) pairs whose vector is missing, one per hash.

        With `enriched_by`, only chunks whose title that enricher wrote: while a model is still
        rewriting titles, the others would be embedded twice.
        """
        ...

    def store_embeddings(self, vectors: dict[str, np.ndarray]) -> int:
        """Attach vectors (by embed hash) to every chunk with that hash; return chunks updated."""
        ...

    # -- enrichment -----------------------------------------------------------
    def chunks_to_enrich(
        self, source: str | None, enricher: str, with_context: bool | None, limit: int = 64
    ) -> list[tuple[str, str, Chunk]]:
        """Return up to `limit` (embed_hash, page title, chunk) not yet enriched by `enricher`, oldest first.

        A chunk is done when `enricher` wrote it and, unless `with_context` is None, it has a context
        sentence exactly when `with_context` asks for one. Chunks that are never embedded are left out.
        """
        ...

    def update_enrichments(self, changes: Sequence[tuple[str, Chunk, str]]) -> int:
        """Write chunks' new title, summary, context and enricher, each given as (old embed hash, chunk, new hash).

        A chunk is found by (url, chunk_number) and changed only while it still has its old embed hash
        (a re-crawl in between wins). When the hash changes its vector is dropped, or replaced at once
        by a vector already stored for the new hash. Return the change in the number of chunks waiting
        for a vector.
        """
        ...

    def get_enrichments(self, model: str, prompt_version: str, hashes: Iterable[str]) -> dict[str, Enrichment]:
        """Return the cached enrichments among `hashes` (prompt hashes) for this model and prompt version."""
        ...

    def put_enrichments(self, model: str, prompt_version: str, enrichments: dict[str, Enrichment]) -> None:
        """Cache enrichments by prompt hash, replacing what the cache held under the same key."""
        ...

    # -- search ---------------------------------------------------------------
    def search_bm25(self, query: str, sources: Sequence[str] = (), limit: int = 100) -> list[tuple[int, float]]:
        """Return (chunk_id, score) best first for a free-text query; higher is better."""
        ...

    def search_vector(
        self, vector: np.ndarray, sources: Sequence[str] = (), limit: int = 100
    ) -> list[tuple[int, float]]:
        """Return (chunk_id, cosine similarity) best first."""
        ...

    def page_priors(self, urls: Sequence[str]) -> dict[str, float]:
        """Return the search prior of each known page (1.0 for ordinary content)."""
        ...

    def set_page_priors(self, priors: Mapping[str, float]) -> None:
        """Set the search prior of each page in `priors` ({url: prior})."""
        ...

    def source_chunks(self, source: str) -> list[tuple[int, Chunk]]:
        """Return every chunk of a source with its id, page by page in chunk order."""
        ...

    def set_inbound_text(self, source: str, texts: Mapping[int, str]) -> int:
        """Index the text of the site's links to each chunk of `source` ({chunk id: text}; "" for a chunk not in it).

        Replacing a page indexes its new chunks with none, until this is called again
        (after every crawl). Return how many chunks changed.
        """
        ...

    def chunks_by_id(self, ids: Sequence[int]) -> dict[int, Chunk]: ...

    def close(self) -> None: ...

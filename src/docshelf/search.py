"""Hybrid retrieval: BM25 and vector candidates fused by reciprocal rank, ranked by page.

The store answers the two candidate queries; everything else — fusion, page
aggregation, how many chunks a page may contribute — happens here, once,
for every backend and every front end (CLI, agent, MCP, HTTP).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from docshelf.embed.base import Embedder
from docshelf.errors import ConfigError
from docshelf.models import Chunk, Freshness, SearchHit, SearchMode, SectionStart
from docshelf.store.base import Store
from docshelf.store.fts import query_terms
from docshelf.versions import ShelfVersions, same_page_key, split_key

SEARCH_MODES: tuple[SearchMode, ...] = ("hybrid", "bm25", "vector")


@dataclass(frozen=True)
class FusionSettings:
    """How candidate lists are fetched and fused.

    >>> FusionSettings(candidates=100, rrf_k=60)
    """

    candidates: int = 100
    """Chunks fetched from each list before fusion."""
    rrf_k: int = 60
    """The k of reciprocal rank fusion: 1 / (k + rank)."""
    page_decay: float = 0.0
    """Weight of a page's 2nd, 3rd… best chunks (decayed geometrically); 0 ranks a page by its best chunk."""
    page_priors: bool = True
    """Multiply a page's score by its structural prior (indexes, source listings, release notes below 1)."""
    lexical_lead: float | None = 1.2
    """In hybrid search, rank first the page whose best BM25 chunk scores at least this many times the next
    page's: a decisive lexical match (an identifier, an error message) is not outvoted by vector neighbours
    of other pages. None turns it off. Measured on two question sets: any value in 1.15–1.3 gives the same ranks."""
    lead_vector_pages: int | None = 20
    """The lexical lead holds only for a page the vector list also places among its first this many pages:
    a word of the question that is also the name of an API object gives that object's page a BM25 lead the
    meaning of the question does not back. None: the BM25 margin alone decides."""
    vector_lead: float | None = 0.1
    """In hybrid search, when no lexical lead applies, rank first the page whose best chunk is this much more
    similar to the question (cosine) than any other page's: reciprocal rank fusion sees only ranks, so a page
    the vectors single out by a wide margin would lose to pages both lists place in the middle. Measured with
    the bundled MiniLM (any value in 0.08–0.15 gives the same ranks on the dev set); None turns it off."""


class HybridSearcher:
    """Search a shelf by BM25, by vector, or both fused.

    Args:
        store: the shelf.
        embedder: a factory for the query embedder, called on the first vector query
            (so BM25-only searches never load a model).
    """

    def __init__(
        self, store: Store, embedder: Callable[[], Embedder], settings: FusionSettings = FusionSettings(),
        pins: Mapping[str, str] | None = None, *, scoped: bool = False,
    ) -> None:
        self.store = store
        self._embedder_factory = embedder
        self._embedder: Embedder | None = None
        self.settings = settings
        self.pins: dict[str, str] = dict(pins or {})
        """{source name: version} read when a search names a source without a version (a project's locks)."""
        self.scoped = scoped
        """A search that names no source reads only the pinned sources (a project's scope), not the whole shelf."""

    def source_keys(self, sources: Sequence[str] = ()) -> tuple[str, ...]:
        """Return the source keys a search over `sources` (`name` or `name@version`) reads; () for all.

        A name without a version reads its pinned version, else its newest; no names read the pinned
        or newest version of every source.

        Raises:
            NotOnShelfError: an unknown source; UnknownVersionError: an unknown version (with those on the shelf).
        """
        return ShelfVersions.of(self.store.source_names()).search_keys(sources, pins=self.pins,
                                                                       only_pinned=self.scoped)

    def embedder(self) -> Embedder:
        """Return the query embedder, loading it on first use and checking it matches the shelf."""
        if self._embedder is None:
            embedder = self._embedder_factory()
            identity = self.store.embedder_identity()
            if identity is not None and identity != (embedder.model_id, embedder.dim):
                raise ConfigError(
                    f"shelf {self.store.location} was built with {identity[0]} ({identity[1]} dims), "
                    f"not {embedder.model_id}; search it with --embedder {identity[0]}"
                )
            self._embedder = embedder
        return self._embedder

    def search(
        self,
        query: str,
        *,
        k: int = 10,
        sources: Sequence[str] = (),
        mode: SearchMode = "hybrid",
        per_page: int = 1,
    ) -> list[SearchHit]:
        """Return the best hits for `query`: at most `per_page` chunks from each of the top pages.

        Args:
            query: free text; identifiers such as `os.makedirs` match exactly through BM25.
            k: number of hits.
            sources: restrict to these sources, each `name` (its pinned or newest version) or
                `name@version`; empty: the pinned or newest version of every source.
            mode: "hybrid" (default), "bm25" or "vector".
            per_page: chunks a single page may contribute.
        """
        if mode not in SEARCH_MODES:
            raise ConfigError(f"unknown search mode {mode!r}; choose one of {', '.join(SEARCH_MODES)}")
        keys = self.source_keys(sources)
        query = query.strip()
        if not query:
            return []
        bm25, vector = self._candidates(query, keys, mode)
        scores = dict(bm25) if mode == "bm25" else dict(vector) if mode == "vector" else (
            reciprocal_rank_fusion([bm25, vector], self.settings.rrf_k))
        if not scores:
            return []
        chunks = self.store.chunks_by_id(list(scores))
        priors = self._priors({chunk.url for chunk in chunks.values()})
        lead = None
        if mode == "hybrid":
            lead = self._lexical_lead(bm25, vector, chunks, priors) or self._vector_lead(vector, chunks)
        ranked = self._rank_pages(scores, chunks, priors, lead, k=k, per_page=per_page)
        terms = _cite_terms(query)
        dates = self.store.page_freshness(sorted({chunk.url for chunk, _ in ranked}))
        return [_hit(chunk, score, terms, dates.get(chunk.url)) for chunk, score in ranked]

    def _candidates(
        self, query: str, sources: Sequence[str], mode: SearchMode
    ) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
        """Return the BM25 and the vector candidate lists (chunk id, score), best first."""
        n = self.settings.candidates
        bm25 = self.store.search_bm25(query, sources, n) if mode in ("hybrid", "bm25") else []
        vector: list[tuple[int, float]] = []
        if mode in ("hybrid", "vector") and self.store.embedder_identity() is not None:
            vector = self.store.search_vector(self.embedder().embed_query(query), sources, n)
        return bm25, vector

    def _priors(self, urls: set[str]) -> dict[str, float]:
        return self.store.page_priors(sorted(urls)) if self.settings.page_priors else {}

    def _lexical_lead(
        self, bm25: list[tuple[int, float]], vector: list[tuple[int, float]], chunks: dict[int, Chunk],
        priors: dict[str, float],
    ) -> str | None:
        """Return the page BM25 ranks first by a clear margin that the vectors back, if any (see FusionSettings)."""
        if self.settings.lexical_lead is None:
            return None
        best = {url: score * priors.get(url, 1.0) for url, score in _best_per_page(bm25, chunks).items()}
        top = sorted(best.items(), key=lambda item: -item[1])[:2]
        if len(top) < 2 or top[1][1] <= 0 or top[0][1] < self.settings.lexical_lead * top[1][1]:
            return None
        limit = self.settings.lead_vector_pages
        if limit is not None and vector and top[0][0] not in list(_best_per_page(vector, chunks))[:limit]:
            return None
        return top[0][0]

    def _vector_lead(self, vector: list[tuple[int, float]], chunks: dict[int, Chunk]) -> str | None:
        """Return the page the vectors rank first by a clear margin of similarity (see FusionSettings), if any."""
        if self.settings.vector_lead is None:
            return None
        ranked = list(_best_per_page(vector, chunks).items())[:2]
        if len(ranked) == 2 and ranked[0][1] - ranked[1][1] >= self.settings.vector_lead:
            return ranked[0][0]
        return None

    def _rank_pages(
        self, scores: dict[int, float], chunks: dict[int, Chunk], priors: dict[str, float], lead: str | None,
        *, k: int, per_page: int,
    ) -> list[tuple[Chunk, float]]:
        by_page: dict[str, list[tuple[float, Chunk]]] = defaultdict(list)
        for chunk_id, score in scores.items():
            chunk = chunks.get(chunk_id)
            if chunk is not None:
                by_page[chunk.url].append((score, chunk))
        ranked = []
        for url, items in by_page.items():
            items.sort(key=lambda item: (-item[0], item[1].chunk_number))
            page_score = sum(score * self.settings.page_decay**i for i, (score, _) in enumerate(items[:3]))
            page_score *= priors.get(url, 1.0)
            ranked.append((page_score, url, items))
        ranked.sort(key=lambda r: (r[1] != lead, -r[0], r[1]))
        hits: list[tuple[Chunk, float]] = []
        seen: set[tuple[str, str]] = set()
        for page_score, _url, items in ranked:
            # Versions of one page are one page: only its best-ranked version is shown.
            name, version = split_key(items[0][1].source)
            if (same := (name, same_page_key(_url, version))) in seen:
                continue
            seen.add(same)
            hits.extend((chunk, page_score) for _score, chunk in items[:per_page])
            if len(hits) >= k:
                break
        return hits[:k]


def _best_per_page(candidates: Sequence[tuple[int, float]], chunks: dict[int, Chunk]) -> dict[str, float]:
    """Return each page's best score in a candidate list (best first), by page URL, in list order."""
    best: dict[str, float] = {}
    for chunk_id, score in candidates:
        chunk = chunks.get(chunk_id)
        if chunk is not None and chunk.url not in best:
            best[chunk.url] = score
    return best


def reciprocal_rank_fusion(lists: Sequence[Sequence[tuple[int, float]]], k: int = 60) -> dict[int, float]:
    """Return fused scores: each id gets the sum over lists of 1 / (k + rank), rank from 1."""
    fused: dict[int, float] = defaultdict(float)
    for ranked in lists:
        for rank, (item, _score) in enumerate(ranked, start=1):
            fused[item] += 1.0 / (k + rank)
    return dict(fused)


def _hit(chunk: Chunk, score: float, terms: list[str], dates: Freshness | None) -> SearchHit:
    section = best_section(chunk, terms)
    return SearchHit(
        url=f"{chunk.url}#{section.anchor}" if section.anchor else chunk.url,
        page_url=chunk.url,
        source=chunk.source,
        chunk_number=chunk.chunk_number,
        title=chunk.title,
        summary=chunk.summary,
        heading_path=section.heading_path,
        content=chunk.content,
        score=round(score, 6),
        version=split_key(chunk.source)[1],
        fetched_at=dates.fetched_at if dates else None,
        changed_at=dates.changed_at if dates else None,
    )


def _cite_terms(query: str) -> list[str]:
    """Return the query's terms as `best_section` compares them: lower case, word prefixes of at least 4."""
    return [t.lower()[: max(4, len(t) - 2)] for t in query_terms(query)]


_WORDS = re.compile(r"[a-z0-9_]+")


def best_section(chunk: Chunk, terms: Sequence[str]) -> SectionStart:
    """Return the section of a chunk that a query's terms match best, for its citation.

    A chunk that packs several sections is cited at the one whose text (its heading counting
    twice) holds most of the distinct terms; ties and no match go to the first. Terms are
    compared as word prefixes, so "configure" matches "configuring".
    """
    first = SectionStart(0, chunk.anchor, chunk.heading_path)
    if len(chunk.sections) < 2 or not terms:
        return chunk.sections[0] if chunk.sections else first
    ends = [s.offset for s in chunk.sections[1:]] + [len(chunk.content)]
    best, best_score = chunk.sections[0], 0
    for section, end in zip(chunk.sections, ends):
        words = _WORDS.findall(chunk.content[section.offset : end].lower())
        heading = _WORDS.findall(" ".join(section.heading_path[-1:]).lower())
        score = sum(any(w.startswith(t) for w in words) + 2 * any(w.startswith(t) for w in heading) for t in terms)
        if score > best_score:
            best, best_score = section, score
    return best

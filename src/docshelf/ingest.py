"""The pipeline: crawl → extract → chunk → enrich → store, with model enrichment and embedding behind it.

Pages are stored (and BM25-searchable) as soon as they are chunked, with
extractive titles and summaries; a background task embeds whatever lacks a
vector while the crawl goes on. With an `LLMEnricher`, a second background
task has the model rewrite titles and summaries between the two, and the
embedder takes a chunk only once the model is done with it (or, when the
model failed, at the end, with its extractive title). An interrupted run
leaves a shelf that searches, and the next run skips unchanged pages and
finishes the missing enrichments and vectors.
"""

from __future__ import annotations

import asyncio
import difflib
import hashlib
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from docshelf.chunk import chunk_markdown
from docshelf.crawl import crawl, default_source_name
from docshelf.crawl.base import CrawlOptions, CrawlOutcome, CrawlReport, Fetched, Validators
from docshelf.dedup import NearDuplicates
from docshelf.embed.base import Embedder
from docshelf.enrich import chunk_summary, chunk_title, embedding_text
from docshelf.errors import EmbedError, ExtractError, SkippedPage
from docshelf.extract import extract_document
from docshelf.inbound import ChunkAnchors, chunk_texts
from docshelf.models import Chunk, Page, PageChange, PageInfo, Source, utc_now
from docshelf.page_kind import PRIORS, names_a_version, page_prior, profile_page, version_series
from docshelf.store.base import NOT_EMBEDDED, Store
from docshelf.versions import source_key, split_key

if TYPE_CHECKING:
    from docshelf.access import AccessPolicy
    from docshelf.enrich_llm import LLMEnricher

EMBED_BATCH = 256
"""Chunks handed to the embedder at once (it sorts and sub-batches them by length, a remote one by request
size). Between two calls the embedder's threads wait while vectors are stored and the next chunks read,
and at the end of a call one thread may wait for the other's last batch: fewer, larger calls wait less."""

ENRICH_BATCH = 32
"""Chunks read from the shelf and handed to the model enricher at once (it bounds the requests in flight)."""


class Progress(Protocol):
    """What the pipeline reports as it goes (the CLI draws bars from it)."""

    def page(self, url: str, status: str) -> None:
        """A page finished: status is ok, unchanged, failed or skipped."""

    def chunks_added(self, count: int) -> None:
        """`count` more chunks now wait for a vector."""

    def embedded(self, count: int) -> None:
        """`count` more chunks got their vector."""


class _NoProgress:
    def page(self, url: str, status: str) -> None: ...
    def chunks_added(self, count: int) -> None: ...
    def embedded(self, count: int) -> None: ...


@dataclass(frozen=True)
class IndexSettings:
    """What is chunked and embedded: the defaults were measured with bench/index.py and bench/retrieval.py."""

    chunk_tokens: int = 200
    """Model tokens of text the embedder reads per chunk, before the title and heading path it puts first."""
    pack_sections: bool = True
    """Pack sections into one chunk up to `chunk_tokens` (False: only sections under 40 tokens)."""
    embed_navigation: bool = False
    """Embed generated navigation pages (indexes, tables of contents) too; they stay BM25-searchable either way."""
    dedup: bool = True
    """A chunk whose body (nearly) repeats one stored earlier in the crawl shares its vector (see `dedup`)."""


@dataclass
class IngestSummary:
    """What `docshelf add` did, as printed by `--json`."""

    source: str
    pages_ok: int = 0
    pages_failed: int = 0
    pages_skipped: int = 0
    pages_unchanged: int = 0
    pages_removed: int = 0
    chunks: int = 0
    embedded: int = 0
    embed_failed: int = 0
    shared_vectors: int = 0
    """Chunks that repeat another chunk's text and share its vector instead of being embedded."""
    seconds: float = 0.0
    failures: list[dict[str, str]] = field(default_factory=list)
    enrichment: dict[str, Any] | None = None
    """The model enricher's report (`EnrichReport.to_json()`), when titles were written by a model."""
    commit: str | None = None
    """For a Git repository: the commit the source now holds."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class EnrichSummary:
    """What `docshelf enrich` did, as printed by `--json`."""

    source: str | None
    """The source enriched, or None for the whole shelf."""
    enrichment: dict[str, Any]
    """The model enricher's report (`EnrichReport.to_json()`)."""
    embedded: int = 0
    embed_failed: int = 0
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def text_hash(text: str) -> str:
    """Return the key an embedding is stored under: sha256 of exactly the embedded text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def build_chunks(fetched: Fetched, source: str, settings: IndexSettings = IndexSettings()) -> tuple[Page, list[Chunk]]:
    """Return the page and its enriched chunks for one fetched document.

    Raises:
        ExtractError: the document has no content worth storing.
    """
    extracted = extract_document(fetched.text, fetched.kind, fetched.url, fetched.data)
    sections = chunk_markdown(extracted.markdown, max_tokens=settings.chunk_tokens, pack=settings.pack_sections)
    if not sections:
        raise ExtractError(fetched.url, "empty page")
    kind = profile_page(extracted.markdown).kind
    page = Page(
        url=fetched.url,
        source=source,
        title=extracted.title,
        markdown=extracted.markdown,
        content_hash=text_hash(extracted.markdown),
        etag=fetched.etag,
        last_modified=fetched.last_modified,
        prior=PRIORS[kind],
        embeds=settings.embed_navigation or kind != "navigation",
        links=list(fetched.links),
    )
    url_path = urlsplit(fetched.url).path
    chunks = [
        Chunk(
            url=page.url,
            source=source,
            chunk_number=number,
            title=chunk_title(page.title, section.heading_path),
            summary=chunk_summary(section.content),
            content=section.content,
            heading_path=section.heading_path,
            anchor=section.anchor,
            sections=section.sections,
            metadata={
                "source": source,
                "crawled_at": page.fetched_at,
                "url_path": url_path,
                "chunk_size": len(section.content),
            },
            updated_dt=page.fetched_at,
            enriched_by="extractive",
        )
        for number, section in enumerate(sections)
    ]
    return page, chunks


def mark_version_series(store: Store, source: str) -> None:
    """Give the source's per-version pages (page_kind.version_series) the prior of release notes.

    It takes the whole source to see a series, so it runs after each crawl; a page that has
    left its series (retitled, or the series shrank) gets back the prior its own text earns.
    """
    pages = {url: info.title for url, info in store.page_states(source).items() if info.status == "ok"}
    series = version_series(pages)
    stored = store.page_priors(list(pages))
    release = PRIORS["release_notes"]
    changes = {url: release for url in series if stored.get(url, 1.0) > release}
    # Only a page titled with a version can have been demoted as part of a series; re-reading the
    # others (indexes, source listings) would redo what was decided when they were stored.
    left = [url for url in pages.keys() - series if stored.get(url) == release and names_a_version(pages[url])]
    for url in left:
        markdown = store.get_page_markdown(url)
        if markdown is not None and (own := page_prior(markdown)) != release:
            changes[url] = own
    if changes:
        store.set_page_priors(changes)


def _embed_hash(chunk: Chunk, duplicates: NearDuplicates | None) -> str:
    """Return the hash a new chunk's vector is stored under: its own text's, or that of an earlier copy of it."""
    own = text_hash(chunk_embedding_text(chunk))
    if duplicates is None or chunk.context:  # a context sentence is the chunk's own, never a copy
        return own
    return duplicates.embed_hash(embedding_text("", [], chunk.content), own)


def attach_inbound_text(store: Store, source: str) -> int:
    """Index the text of the source's links to each of its chunks (docshelf.inbound); return chunks changed.

    A link's text belongs to the page it points at, so a changed page changes other
    pages' chunks: it reads the whole source, after each crawl, like mark_version_series.
    """
    # Every page with Markdown: one that failed on a refresh keeps its chunks, and its links still count.
    pages = {url: markdown for url in store.page_states(source) if (markdown := store.get_page_markdown(url))}
    chunks: dict[str, list[ChunkAnchors]] = {}
    for chunk_id, chunk in store.source_chunks(source):
        anchors = tuple(dict.fromkeys(a for a in (chunk.anchor, *(s.anchor for s in chunk.sections)) if a))
        chunks.setdefault(chunk.url, []).append(ChunkAnchors(chunk_id, anchors, chunk.content))
    return store.set_inbound_text(source, chunk_texts(pages, chunks))


def stored_validators(known: dict[str, PageInfo]) -> Validators:
    """Return the conditional-request validators (etag, last_modified) of the pages stored ok in `known`."""

    def validators(url: str) -> tuple[str | None, str | None] | None:
        info = known.get(url)
        if info is None or info.status != "ok" or not (info.etag or info.last_modified):
            return None
        return info.etag, info.last_modified

    return validators


def chunk_embedding_text(chunk: Chunk) -> str:
    """Return the text a chunk is embedded as: its context sentence first when it has one (`--context llm`)."""
    text = embedding_text(chunk.title, chunk.heading_path, chunk.content)
    return f"{chunk.context}\n{text}" if chunk.context else text


class Ingestor:
    """Adds and refreshes sources on a shelf.

    Args:
        store: the shelf.
        embedder: a factory for the document embedder (loaded once, when first needed).
        progress: receives page and embedding events.
        enricher: has a model rewrite the titles and summaries of the sources added or enriched;
            None keeps the extractive ones.
        settings: what is chunked and embedded.
        access: the addresses crawls may connect to (`docshelf.access`); None: the CLI's default,
            which trusts each start URL's host and refuses other private addresses.
    """

    def __init__(self, store: Store, embedder: Callable[[], Embedder], progress: Progress | None = None,
                 enricher: LLMEnricher | None = None, settings: IndexSettings = IndexSettings(),
                 access: AccessPolicy | None = None) -> None:
        self.store = store
        self.access = access
        self.settings = settings
        self._embedder_factory = embedder
        self._embedder: Embedder | None = None
        self.progress: Progress = progress or _NoProgress()
        self.enricher = enricher
        self._site_projects: dict[str, str] = {}
        """The project name each root's site states (found by `source_for`), recorded as a package of a new source."""

    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = self._embedder_factory()
            self.store.bind_embedder(self._embedder.model_id, self._embedder.dim)
        return self._embedder

    def add(self, root: str, *, source: str | None = None, options: CrawlOptions = CrawlOptions(),
            version: str | None = None, packages: Sequence[str] = ()) -> IngestSummary:
        """Crawl `root` into the shelf under `source` (derived from the root when None); return the summary.

        Args:
            version: the version the documentation is of; None detects it, "" means unversioned (see `source_for`).
            packages: packages the documentation is about, added to those the source records.
        """
        return asyncio.run(self.add_async(root, source=source, options=options, version=version, packages=packages))

    async def source_for(self, root: str, source: str | None = None, version: str | None = None,
                         options: CrawlOptions | None = None) -> str:
        """Return the key (`name@version`) a crawl of `root` is stored under.

        `source` may be `name` or `name@version`; `version=""` means unversioned. Without a version: the version of the source
        already added from this root (a refresh), else the version the site states
        (docshelf.crawl.version), else unversioned. A default name leaves out the URL's version segment.
        A Git repository (`options` tell a local clone with a ref) states none the shelf reads: unversioned.
        The site is asked through the shelf's access policy (`self.access`), as the crawl is.
        """
        from docshelf.access import AccessPolicy, guarded_client
        from docshelf.crawl.git import is_git_source
        from docshelf.crawl.local import is_local
        from docshelf.crawl.version import USER_AGENT, detect_site, without_version

        name, stated = split_key(source) if source else (default_source_name(without_version(root)), "")
        if version or stated:
            return source_key(name, version or stated)
        if version == "":  # stated as unversioned
            return name
        same_root = [s.source.name for s in self.store.list_sources()
                     if s.source.base_name == name and s.source.root == root]
        if same_root:
            return same_root[0]
        if is_git_source(root, options):
            return name
        if is_local(root):
            site = await detect_site(root)
        else:
            policy = (self.access or AccessPolicy.from_env()).for_crawl(root if "://" in root else f"https://{root}")
            async with guarded_client(policy, timeout=20.0, follow_redirects=True,
                                      headers={"User-Agent": USER_AGENT}) as client:
                site = await detect_site(root, client)
        if site.project:  # the project the site documents is a package name to match a project's dependencies by
            self._site_projects[root] = site.project
        return source_key(name, site.version)

    def register_source(self, root: str, name: str, options: CrawlOptions, existing: Source | None,
                        packages: Sequence[str] = ()) -> Source:
        """Write the source a crawl of `root` fills (keeping what a refresh keeps) before its pages; return it."""
        stated = [self._site_projects[root].lower()] if root in self._site_projects and existing is None else []
        source = Source(
            name=name, root=root, options=options_json(options) | kept_options(existing),
            created_at=existing.created_at if existing else utc_now(),
            packages=list(dict.fromkeys([*(existing.packages if existing else []), *packages, *stated])),
        )
        self.store.upsert_source(source)
        return source

    async def add_async(
        self, root: str, *, source: str | None = None, options: CrawlOptions = CrawlOptions(),
        version: str | None = None, packages: Sequence[str] = (),
    ) -> IngestSummary:
        started = time.monotonic()
        self.embedder()  # fail fast on a model mismatch, before any network
        name = await self.source_for(root, source, version, options)
        existing = self.store.get_source(name)
        registered = self.register_source(root, name, options, existing, packages)
        stored_options, kept_packages, created_at = registered.options, registered.packages, registered.created_at
        summary = IngestSummary(source=name)
        duplicates = NearDuplicates() if self.settings.dedup else None
        known = self.store.page_states(name)
        changes = ChangeLog(name, refresh=existing is not None)
        stages = _Stages(self.enricher is not None)
        since = (existing.options.get(GIT_OPTION) or {}).get("commit") if existing else None
        async with stages.running(self._enrich_pending(name, stages), self._embed_pending(name, summary, stages)):
            seen, report = await self._crawl_into_shelf(root, name, options, known, summary, stages.new_chunks,
                                                        duplicates, changes, since)
            if seen is not None:
                gone = [url for url in known if url not in seen]
                summary.pages_removed = self.store.remove_pages(name, gone) if gone else 0
                changes.removed(url for url in gone if known[url].status == "ok")
            mark_version_series(self.store, name)
            attach_inbound_text(self.store, name)
        if self.enricher is not None:
            summary.enrichment = self.enricher.report.to_json()
        if report.commit is not None:
            # Recorded only after a complete crawl: the next refresh diffs from the commit whose files are all stored.
            previous = (existing.options.get(GIT_OPTION) if existing else None) or {}
            commit = report.commit if seen is not None else previous.get("commit")
            stored_options[GIT_OPTION] = {"ref": report.ref, "commit": commit}
            summary.commit = commit
        summary.shared_vectors = duplicates.shared if duplicates is not None else 0
        if changes.entries:
            self.store.record_changes(changes.entries)
        self.store.upsert_source(
            Source(name=name, root=root, options=stored_options, created_at=created_at, last_crawl_at=utc_now(),
                   packages=kept_packages)
        )
        summary.seconds = round(time.monotonic() - started, 3)
        return summary

    async def _crawl_into_shelf(
        self, root: str, name: str, options: CrawlOptions, known: dict, summary: IngestSummary, wake: asyncio.Event,
        duplicates: NearDuplicates | None, changes: ChangeLog, since_commit: str | None = None,
    ) -> tuple[set[str] | None, CrawlReport]:
        """Store every crawled page; return the URLs seen when the crawl was complete (else None), and its report."""

        seen: set[str] = set()
        links = self.store.page_links(name)
        crawler = crawl(root, options, validators=stored_validators(known), since_commit=since_commit, stored_urls=known.keys(),
                        access=self.access, known_links=links.get)
        # `async with`: a failed write (a full disk, a lost database) stops the fetches in flight before it
        # propagates, rather than leaving them to be torn down half-connected when the event loop closes.
        async with crawler:
            async for outcome in crawler:
                seen.add(outcome.url)
                status = self.store_outcome(outcome, name, known, summary, duplicates, changes)
                self.progress.page(outcome.url, status)
                if status == "ok":
                    wake.set()
                await asyncio.sleep(0)  # let the embedder pick up work between pages
        return (seen if crawler.complete else None), crawler.report

    def store_outcome(
        self, outcome: CrawlOutcome, name: str, known: dict, summary: IngestSummary, duplicates: NearDuplicates | None,
        changes: ChangeLog,
    ) -> str:
        """Store one page's outcome in source `name`; return its status: ok, unchanged, failed or skipped.

        `known` holds the page states the source had before the crawl (`Store.page_states`).
        """
        if outcome.not_modified:
            self.store.touch_page(outcome.url, utc_now())
            summary.pages_unchanged += 1
            return "unchanged"
        if outcome.error is not None:
            return self._record_failure(outcome.url, name, outcome.error.reason,
                                        "skipped" if isinstance(outcome.error, SkippedPage) else "failed", summary)
        assert outcome.fetched is not None
        try:
            page, chunks = build_chunks(outcome.fetched, name, self.settings)
        except ExtractError as exc:
            return self._record_failure(outcome.url, name, exc.reason, "failed", summary)
        previous = known.get(page.url)
        if previous is not None and previous.status == "ok" and previous.content_hash == page.content_hash:
            self.store.touch_page(page.url, page.fetched_at)
            summary.pages_unchanged += 1
            return "unchanged"
        hashes = [_embed_hash(chunk, duplicates) if page.embeds else NOT_EMBEDDED for chunk in chunks]
        old_markdown = self.store.get_page_markdown(page.url) if changes.refresh and previous is not None else None
        pending = self.store.replace_page(page, chunks, hashes)
        changes.stored(page, previous, old_markdown)
        summary.pages_ok += 1
        summary.chunks += len(chunks)
        self.progress.chunks_added(pending)
        return "ok"

    def _record_failure(self, url: str, name: str, reason: str, status: str, summary: IngestSummary) -> str:
        self.store.record_failure(
            Page(url=url, source=name, title="", markdown="", content_hash="", status=status, error=reason)  # type: ignore[arg-type]
        )
        if status == "skipped":
            summary.pages_skipped += 1
        else:
            summary.pages_failed += 1
        summary.failures.append({"url": url, "reason": reason, "status": status})
        return status

    def enrich(self, source: str | None = None) -> EnrichSummary:
        """Have the model write the titles and summaries it has not written yet in `source` (None: the whole shelf)."""
        return asyncio.run(self.enrich_async(source))

    async def enrich_async(self, source: str | None = None) -> EnrichSummary:
        """Enrich what the enricher has not yet, embed what changed, and return the summary.

        Resumable: every batch is written as it is done, so an interrupted run loses at most the
        requests in flight, and the next run asks only for what is still missing.
        """
        if self.enricher is None:
            raise ValueError("Ingestor.enrich needs an enricher")
        started = time.monotonic()
        self.embedder()  # fail fast on a model mismatch, before any request
        summary = EnrichSummary(source=source, enrichment={})
        stages = _Stages(enriching=True)
        stages.crawl_done.set()
        async with stages.running(self._enrich_pending(source, stages), self._embed_pending(source, summary, stages)):
            pass
        summary.enrichment = self.enricher.report.to_json()
        summary.seconds = round(time.monotonic() - started, 3)
        return summary

    async def _enrich_pending(self, source: str | None, stages: _Stages) -> None:
        """Have the model enrich chunks it has not written yet, until the crawl is over and none are left.

        A chunk the model failed on keeps its extractive title and summary, is not asked again in
        this run, and is embedded as it is once enrichment is over.
        """
        enricher = self.enricher
        if enricher is None:
            return
        failed: set[tuple[str, int]] = set()
        try:
            while not enricher.stopped:
                stages.to_enrich.clear()
                last_round = stages.crawl_done.is_set()  # read before the shelf: later pages wake us again
                batch = [t for t in self.store.chunks_to_enrich(source, enricher.name, enricher.with_context,
                                                                ENRICH_BATCH + len(failed))
                         if (t[2].url, t[2].chunk_number) not in failed][:ENRICH_BATCH]
                if not batch:
                    if last_round:
                        return
                    await stages.to_enrich.wait()
                    continue
                results = await enricher.enrich([(title, chunk) for _, title, chunk in batch])
                failed.update((c.url, c.chunk_number) for (_, _, c), new in zip(batch, results) if new is None)
                changes = [(old_hash, new, text_hash(chunk_embedding_text(new)))
                           for (old_hash, _, _), new in zip(batch, results) if new is not None]
                self.progress.chunks_added(self.store.update_enrichments(changes))
                stages.to_embed.set()
        finally:
            stages.enrich_done.set()
            stages.to_embed.set()

    async def _embed_pending(self, source: str | None, summary: IngestSummary | EnrichSummary, stages: _Stages) -> None:
        """Embed chunks without vectors until crawl and enrichment are over and none are left.

        While the model still enriches, only chunks it is done with are embedded: the others would
        be embedded again once their title changes.
        """
        embedder = self.embedder()
        failed: set[str] = set()
        while True:
            stages.to_embed.clear()
            last_round = stages.crawl_done.is_set() and stages.enrich_done.is_set()
            only = self.enricher.name if self.enricher is not None and not stages.enrich_done.is_set() else None
            pending = self.store.pending_embeddings(source, EMBED_BATCH + len(failed), enriched_by=only)
            batch = [(h, c) for h, c in pending if h not in failed][:EMBED_BATCH]
            if not batch:
                if last_round:
                    summary.embed_failed = len(failed)
                    return
                await stages.to_embed.wait()
                continue
            texts = [chunk_embedding_text(chunk) for _, chunk in batch]
            try:
                vectors = await asyncio.to_thread(embedder.embed_documents, texts)
            except EmbedError:
                vectors = await self._embed_one_by_one(embedder, texts)
            stored = {h: v for (h, _), v in zip(batch, vectors) if v is not None}
            failed.update(h for (h, _), v in zip(batch, vectors) if v is None)
            count = self.store.store_embeddings(stored)
            summary.embedded += count
            self.progress.embedded(count)

    async def _embed_one_by_one(self, embedder: Embedder, texts: list[str]) -> list[Any]:
        """Retry a failed batch text by text; a text that fails again gets None (left without a vector)."""
        out: list[Any] = []
        for text in texts:
            try:
                out.append((await asyncio.to_thread(embedder.embed_documents, [text]))[0])
            except EmbedError:
                out.append(None)
        return out


class ChangeLog:
    """What one refresh of a source added, changed and removed, for `docshelf changes`.

    The first crawl of a source logs nothing: every page would be "added".
    """

    def __init__(self, source: str, *, refresh: bool) -> None:
        self.source = source
        self.refresh = refresh
        self.at = utc_now()
        self.entries: list[PageChange] = []

    def stored(self, page: Page, previous: Any, old_markdown: str | None) -> None:
        """Log a page stored with new content: added, or changed (with its diff's size) when it was there."""
        if not self.refresh:
            return
        if previous is None or previous.status != "ok" or old_markdown is None:
            self.entries.append(PageChange(self.source, page.url, "added", self.at))
        else:
            self.entries.append(PageChange(self.source, page.url, "changed", self.at,
                                           markdown_diff_lines(old_markdown, page.markdown)))

    def removed(self, urls: Iterable[str]) -> None:
        if self.refresh:
            self.entries.extend(PageChange(self.source, url, "removed", self.at) for url in urls)


def markdown_diff_lines(old: str, new: str) -> int:
    """Return how many non-blank lines a diff of two Markdown texts adds or removes (blank lines only separate)."""
    return sum(1 for line in difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=0)
               if line[:1] in "+-" and not line.startswith(("+++", "---")) and line[1:].strip())


class _Stages:
    """The events that chain the background stages: crawl → model enrichment → embedding, each waking the next."""

    def __init__(self, enriching: bool) -> None:
        self.to_enrich = asyncio.Event()
        """Set when pages were stored: there may be chunks for the model."""
        self.to_embed = asyncio.Event()
        """Set when there may be chunks for the embedder."""
        self.crawl_done = asyncio.Event()
        self.enrich_done = asyncio.Event()
        self.new_chunks = self.to_enrich if enriching else self.to_embed
        """What the crawl sets after storing a page: new chunks go to the model first when there is one."""
        if not enriching:
            self.enrich_done.set()

    @asynccontextmanager
    async def running(self, *stages: Coroutine[Any, Any, None]) -> AsyncIterator[None]:
        """Run the background stages while the block runs; then let them finish, and raise what they raised."""
        tasks = [asyncio.create_task(stage) for stage in stages]
        try:
            yield
        finally:
            self.crawl_done.set()
            self.to_enrich.set()
            self.to_embed.set()
            outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome


ENRICH_OPTION = "enrich"
"""Key of a source's options holding how its chunks are enriched ({"model", "context"}), set by `docshelf add`."""


GIT_OPTION = "git"
"""Key of a source's options holding the Git ref and commit it was read at ({"ref", "commit"})."""


def kept_options(existing: Source | None) -> dict[str, Any]:
    """Return the options of a source that are not crawl options and outlive a refresh."""
    if existing is None:
        return {}
    return {key: existing.options[key] for key in (ENRICH_OPTION, GIT_OPTION) if key in existing.options}


def options_json(options: CrawlOptions) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(options).items()}

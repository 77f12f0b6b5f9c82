"""The crawl of a local folder (or one file): documentation files read from disk as `file://` pages."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncGenerator
from email.utils import formatdate
from pathlib import Path
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

from docshelf.crawl.base import ContentKind, CrawlOptions, CrawlOutcome, CrawlReport, Fetched, Validators
from docshelf.crawl.content import decode
from docshelf.crawl.fetcher import format_size
from docshelf.crawl.links import html_links, markdown_links
from docshelf.crawl.scope import matches_globs
from docshelf.errors import ConfigError, FetchError, SkippedPage

KINDS: dict[str, ContentKind] = {
    ".md": "markdown",
    ".markdown": "markdown",
    ".html": "html",
    ".htm": "html",
    ".txt": "text",
    ".rst": "rst",
    ".ipynb": "notebook",
    ".pdf": "pdf",
    ".yaml": "openapi",
    ".yml": "openapi",
    ".json": "openapi",
}
# Most JSON and YAML files in a docs folder are configuration; one is taken only when it starts like an
# OpenAPI or Swagger description (read from its first bytes, see `_is_api_description`).
API_DESCRIPTION_SUFFIXES = frozenset({".yaml", ".yml", ".json"})
# Folders that hold tooling, not documentation, besides every hidden one.
SKIPPED_FOLDERS = frozenset({"node_modules", "__pycache__"})


def is_local(root: str) -> bool:
    """Return True when `root` names a local path or a `file://` URL rather than a website."""
    root = root.strip()
    if root.lower().startswith("file:"):
        return True
    if "://" in root:
        return False
    return (
        root.startswith(("/", "./", "../", "~", ".\\", "..\\")) or root in (".", "..") or Path(root).exists()
    )


def local_path(root: str) -> Path:
    """Return the absolute path a local root (path or `file://` URL) names."""
    root = root.strip()
    if root.lower().startswith("file:"):
        root = url2pathname(unquote(urlsplit(root).path))
    return Path(root).expanduser().resolve()


async def crawl_folder(
    root: str,
    options: CrawlOptions,
    report: CrawlReport,
    validators: Validators | None = None,
    *,
    confined: bool = False,
) -> AsyncGenerator[CrawlOutcome, None]:
    """Yield one outcome per documentation file under `root`, sorted by path.

    Reads `.md`, `.markdown`, `.html`, `.htm`, `.txt`, `.rst`, `.ipynb`, OpenAPI/Swagger
    `.yaml`/`.yml`/`.json` files and (with `include_pdf`, or when named) `.pdf` files
    recursively, skipping hidden folders and files and `node_modules`. Include/exclude
    globs match the path relative to the root or the `file://` URL. A file whose size and
    modification time match the stored ETag is reported as `not_modified`.

    With `confined` (a crawl a client of the server started), a file that is a symlink to a
    place outside the folder is skipped: the folder was allowed, not what it links to.

    Raises:
        ConfigError: `root` does not exist, or is a file of a type docshelf does not read.
    """
    folder = local_path(root)
    files = _documents(folder, include_pdf=options.include_pdf or folder.is_file())
    report.discovered_by = "folder"
    taken = 0
    for path in files:
        relative = path.name if folder.is_file() else path.relative_to(folder).as_posix()
        url = path.as_uri()
        depth = relative.count("/")
        if not matches_globs((relative, url), options.include, options.exclude):
            continue
        if options.max_depth is not None and depth > options.max_depth:
            continue
        if options.max_pages is not None and taken >= options.max_pages:
            return
        taken += 1
        if confined and not path.resolve().is_relative_to(folder):
            yield CrawlOutcome(url, error=SkippedPage(url, "a symlink to a file outside the folder"))
            continue
        yield await asyncio.to_thread(read_document, path, depth, options.max_bytes, validators)
    report.complete = True


def read_document(
    path: Path, depth: int, max_bytes: int, validators: Validators | None = None
) -> CrawlOutcome:
    """Return the outcome of reading one documentation file.

    The file's size and modification time make its ETag, so an edit within the same
    second as the last crawl still counts as a change.
    """
    url = path.as_uri()
    kind = KINDS[path.suffix.lower()]
    try:
        stat = path.stat()
        etag = f'"{stat.st_size:x}-{stat.st_mtime_ns:x}"'
        stored = validators(url) if validators else None
        # An API description stands for its tag pages too, which a not-modified outcome would leave unreported.
        if stored and stored[0] == etag and kind != "openapi":
            return CrawlOutcome(url, not_modified=True)
        if stat.st_size > max_bytes:
            return CrawlOutcome(url, error=SkippedPage(url, f"body over {format_size(max_bytes)}"))
        body = path.read_bytes()
    except OSError as exc:
        return CrawlOutcome(url, error=FetchError(url, f"unreadable: {exc.strerror or exc}"))
    return document_outcome(url, kind, body, etag, formatdate(stat.st_mtime, usegmt=True), depth)


def document_outcome(
    url: str, kind: ContentKind, body: bytes, etag: str | None, last_modified: str | None, depth: int
) -> CrawlOutcome:
    """Return the outcome of a document read from disk (a folder's file, a repository's blob)."""
    if kind == "pdf":
        return CrawlOutcome(url, fetched=Fetched(url, kind, "", etag=etag, last_modified=last_modified,
                                                 depth=depth, data=body))
    text = decode(body, kind)
    if text is None:
        return CrawlOutcome(url, error=FetchError(url, "undecodable bytes"))
    if not text.strip():
        return CrawlOutcome(url, error=FetchError(url, "empty page"))
    fetched = Fetched(
        url,
        kind,
        text,
        etag=etag,
        last_modified=last_modified,
        depth=depth,
        links=_web_links(text, kind, url),
    )
    return CrawlOutcome(url, fetched=fetched)


def _web_links(text: str, kind: ContentKind, url: str) -> list[str]:
    """Return the http(s) links of a local document (links between local files are not followed)."""
    if kind == "html":
        return html_links(text, url).links
    return markdown_links(text, url) if kind == "markdown" else []


def _documents(root: Path, *, include_pdf: bool = False) -> list[Path]:
    """Return the documentation files at `root` (a folder, searched recursively, or one file), sorted.

    Raises:
        ConfigError: `root` does not exist, or is a file of a type docshelf does not read.
    """
    if root.is_file():
        if root.suffix.lower() not in KINDS:
            raise ConfigError(f"{root} is not a file docshelf reads (use {', '.join(KINDS)})")
        if root.suffix.lower() in API_DESCRIPTION_SUFFIXES and not _is_api_description(root):
            raise ConfigError(f"{root} is not an OpenAPI or Swagger description (no `openapi: 3…` or "
                              "`swagger: 2…` near its start); docshelf reads JSON and YAML files only as those")
        return [root]
    if not root.is_dir():
        raise ConfigError(f"no such folder: {root} — check the path")
    found: list[Path] = []
    for folder, subfolders, names in os.walk(root):
        # Pruning in place stops os.walk from descending into hidden and tooling folders.
        subfolders[:] = [
            name for name in subfolders if not name.startswith(".") and name not in SKIPPED_FOLDERS
        ]
        found.extend(
            Path(folder, name)
            for name in names
            if not name.startswith(".") and is_document(Path(folder, name), include_pdf)
        )
    return sorted(found, key=lambda path: path.relative_to(root).as_posix())


def is_document(path: Path, include_pdf: bool) -> bool:
    """Return True for a file of a folder that docshelf reads."""
    suffix = path.suffix.lower()
    if suffix not in KINDS:
        return False
    if suffix == ".pdf":
        return include_pdf
    return suffix not in API_DESCRIPTION_SUFFIXES or _is_api_description(path)


def _is_api_description(path: Path) -> bool:
    """Return True when a JSON/YAML file starts like an OpenAPI or Swagger description."""
    from docshelf.extract.formats.openapi import looks_like_openapi

    try:
        with path.open("rb") as file:
            head = file.read(4096)
    except OSError:
        return True  # reading it again reports why it cannot be read
    return looks_like_openapi(head.decode("utf-8", errors="replace"))

"""The documentation version a site states about itself, read before its crawl.

Where a site says which version it documents, in order of trust: a version segment of
the root URL (`/en/4.2/`, `/v2.1/`), MkDocs mike's `versions.json` for an alias segment
(`/latest/` → the version it points at), then the root page itself: Sphinx's
`DOCUMENTATION_OPTIONS.VERSION` (inline or in `documentation_options.js`), a
`docsearch:version` or Docusaurus version `<meta>`, the Docusaurus `docs-version-X`
class, the Sphinx title suffix ("— Django 4.2 documentation"), or an `llms.txt` header
("# Django 4.2"). None found means the source is unversioned.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx
from selectolax.lexbor import LexborHTMLParser

from docshelf.access import AccessDeniedError
from docshelf.crawl.local import is_local, local_path

_VERSION = r"v?\d+(?:\.\d+)+(?:[a-z]+\d*)?|v\d+"
_URL_VERSION = re.compile(rf"^(?:{_VERSION})$", re.IGNORECASE)
_LANGUAGE = re.compile(r"^[a-z]{2}(?:[-_][a-z]{2,4})?$", re.IGNORECASE)
_ALIASES = {"latest", "stable", "current", "dev", "main", "master"}
_SPHINX_OPTION = re.compile(r"""\bVERSION\s*:\s*['"]([^'"]+)['"]""")
_TITLE_SUFFIX = re.compile(r"\b(\d+(?:\.\d+)+(?:[a-z]+\d*)?)\s+(?:documentation|docs)\s*$", re.IGNORECASE)
_HEADER = re.compile(r"^#\s+.*?\bv?(\d+(?:\.\d+)+(?:[a-z]+\d*)?)\s*$", re.MULTILINE)
_TITLE_PROJECT = re.compile(r"(?:^|[\u2014|:\u2013-]\s)\s*([A-Za-z][\w .+-]*?)\s+v?\d+(?:\.\d+)*(?:[a-z]+\d*)?\s+"
                            r"(?:documentation|docs)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class SiteFacts:
    """What a documentation site says about itself before its crawl."""

    version: str | None = None
    """The version it documents, when it says."""
    project: str | None = None
    """The project it documents ("Django" of "… — Django 4.2 documentation"), when its title says."""


def version_in_url(url: str) -> str | None:
    """Return the version a path segment of `url` names (`/en/4.2/` → "4.2", `/v2/` → "2"), else None.

    A bare number counts only after a language segment (`/en/3/`): elsewhere it is too often not a version.

    >>> version_in_url("https://docs.djangoproject.com/en/4.2/")
    '4.2'
    """
    segments = [s for s in urlsplit(url).path.split("/") if s]
    for index, segment in enumerate(segments):
        if _URL_VERSION.match(segment):
            return segment.removeprefix("v").removeprefix("V")
        if segment.isdigit() and index > 0 and _LANGUAGE.match(segments[index - 1]):
            return segment
    return None


def without_version(url: str) -> str:
    """Return `url` without its version segment (for a source name shared by every version)."""
    version = version_in_url(url)
    if version is None:
        return url
    parts = urlsplit(url)
    segments = [s for s in parts.path.split("/") if s and s.lower().removeprefix("v") != version.lower()]
    return urlunsplit(parts._replace(path="/" + "/".join(segments) + ("/" if segments else "")))


def version_in_page(text: str) -> str | None:
    """Return the version an HTML page or llms.txt states (see the module docstring), else None."""
    if not text.lstrip().startswith("<"):
        found = _HEADER.search(text[:2000])
        return found.group(1) if found else None
    tree = LexborHTMLParser(text)
    for script in tree.css("script"):
        found = _SPHINX_OPTION.search(script.text() or "")
        if found and "DOCUMENTATION_OPTIONS" in (script.text() or ""):
            return found.group(1)
    for name in ("docsearch:version", "docusaurus_version"):
        meta = tree.css_first(f'meta[name="{name}"]')
        content = (meta.attributes.get("content") or "").strip() if meta else ""
        if content and content.lower() not in _ALIASES:
            return content.split(",")[0].strip()
    root = tree.css_first("html")
    for cls in ((root.attributes.get("class") or "").split() if root else []):
        if cls.startswith("docs-version-") and cls[13:] not in _ALIASES:
            return cls[13:]
    title = tree.css_first("title")
    found = _TITLE_SUFFIX.search(title.text().strip()) if title else None
    return found.group(1) if found else None


def project_in_page(text: str) -> str | None:
    """Return the project a page's title names before its version ("Quickstart — Widgets 2.4 documentation"
    → "Widgets"), else None."""
    if not text.lstrip().startswith("<"):
        return None
    title = LexborHTMLParser(text).css_first("title")
    found = _TITLE_PROJECT.search(title.text().strip()) if title else None
    return found.group(1).strip() if found else None


def sphinx_options_url(text: str, base: str) -> str | None:
    """Return the URL of a Sphinx page's `documentation_options.js`, when it loads one."""
    if not text.lstrip().startswith("<"):
        return None
    for script in LexborHTMLParser(text).css("script[src]"):
        src = script.attributes.get("src") or ""
        if src.split("?")[0].endswith("documentation_options.js"):
            return urljoin(base, src)
    return None


def version_in_mike(versions_json: str, alias: str) -> str | None:
    """Return the version mike's `versions.json` gives for a version or alias segment, else None."""
    try:
        entries = json.loads(versions_json)
    except json.JSONDecodeError:
        return None
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict) and (entry.get("version") == alias or alias in (entry.get("aliases") or [])):
            return str(entry.get("version"))
    return None


async def detect_version(root: str, client: httpx.AsyncClient | None = None) -> str | None:
    """Return the version the documentation at `root` states (URL, mike, page), else None."""
    return (await detect_site(root, client)).version


USER_AGENT = "docshelf/0.1 (+https://github.com/docshelf/docshelf)"


async def detect_site(root: str, client: httpx.AsyncClient | None = None) -> SiteFacts:
    """Return the version and project the documentation at `root` states (URL, mike, page).

    Makes at most three requests (the root page, its `documentation_options.js`, mike's
    `versions.json`); any that fails only means that clue is missing.
    """
    if is_local(root):
        path = local_path(root)
        index = path / "index.html" if path.is_dir() else path
        try:
            text = index.read_text(encoding="utf-8", errors="replace") if index.is_file() else ""
        except OSError:
            return SiteFacts()
        return SiteFacts(version_in_page(text) if text else None, project_in_page(text) if text else None)
    url = root if "://" in root else f"https://{root}"
    own = client is None
    http = client or httpx.AsyncClient(timeout=20.0, follow_redirects=True, headers={"User-Agent": USER_AGENT})
    try:
        page = await _get(http, url)
        project = project_in_page(page.text) if page is not None else None
        version = version_in_url(url)
        if version is None and page is not None:
            version = await _from_site(http, page)
        return SiteFacts(version, project)
    finally:
        if own:
            await http.aclose()


async def _from_site(http: httpx.AsyncClient, page: httpx.Response) -> str | None:
    final = str(page.url)
    if (found := version_in_url(final)) is not None:  # `/` redirected to `/en/4.2/`
        return found
    segments = [s for s in urlsplit(final).path.split("/") if s]
    if segments and segments[-1].lower() in _ALIASES:
        versions = await _get(http, urljoin(final, "../versions.json"))
        if versions is not None and (found := version_in_mike(versions.text, segments[-1])) is not None:
            return found
    if (found := version_in_page(page.text)) is not None:
        return found
    options = sphinx_options_url(page.text, final)
    if options is not None and (script := await _get(http, options)) is not None:
        found_option = _SPHINX_OPTION.search(script.text)
        return found_option.group(1) if found_option else None
    return None


async def _get(http: httpx.AsyncClient, url: str) -> httpx.Response | None:
    try:
        response = await http.get(url)
    except (httpx.HTTPError, AccessDeniedError):  # refused by the access policy: the crawl reports it
        return None
    return response if response.status_code == 200 else None

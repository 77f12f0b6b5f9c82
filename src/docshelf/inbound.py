"""The site's own navigation as evidence: the text of links that point at a section, per chunk.

An index entry ("caching, HTTP"), a table-of-contents line or a cross-reference's
text is a keyword the site's authors chose for the section it points at, often one
the section itself never uses. This module reads the links of a source's stored
page Markdown (the extractor writes them absolute: `[text](https://host/page.html#id)`),
keeps those that point at another page of the same source, and maps each
(page, fragment) to the chunk it names. The store indexes the result as an extra
full-text field; `ingest.attach_inbound_text` runs it after every crawl.

Everything here is pure: Markdown and chunk lists in, texts per chunk id out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from urllib.parse import unquote

from docshelf.crawl.urls import is_web_url, normalize_url
from docshelf.store.fts import query_terms

MAX_CHARS = 2000
"""Inbound text kept per chunk: a genindex with thousands of links to one page must not flood a section."""

# `[text](target)`, not `![alt](src)`. The text may hold one level of brackets ("[[source]](…)",
# "[![logo](…) Home](…)"); the target is `<…>` or has no spaces, balanced parentheses allowed.
_LINK = re.compile(
    r"(?<!!)\[((?:[^\[\]\\]|\\.|\[(?:[^\[\]\\]|\\.)*\])*)\]"
    r"\((<[^<>\n]*>|(?:[^()\s]|\([^()\s]*\))+)\)"
)
_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
_LIST_ITEM = re.compile(r"^( *)(?:[-*+]|\d{1,9}[.)]) +(.*)$")
_HEADING_ANCHOR = re.compile(r"^#{1,6}[ \t]+(.*?)[ \t]*\{#([^\s}]+)[^}\n]*\}[ \t]*$", re.MULTILINE)
_FENCE = re.compile(r"^ *(`{3,}|~{3,})")
_HEADING_LINE = re.compile(r"^#{1,6}[ \t]")
_ATTRIBUTES = re.compile(r"[ \t]*\{#[^}\n]*\}[ \t]*$")
_MARKUP = re.compile(r"[*`]+|\\(?=[^\w\s])")
_QUALIFIER_TAIL = re.compile(r"\s*\([^()]*\)$")
_BARE_URL = re.compile(r"(?:[a-z][a-z0-9+.-]*://|www\.)\S*", re.IGNORECASE)

# Navigation words that say where a link goes, not what its target is about. Kept short on
# purpose: "index", "go" or "first" are topics somewhere (SQLite's CREATE INDEX, the Go language).
_NAVIGATION = frozenset(
    ["source", "next", "previous", "prev", "back", "top", "home", "here", "click here", "link", "permalink",
     "more", "read more", "continue", "continue reading", "this page", "edit", "edit on github",
     "edit this page", "view source", "show source", "view page source"]
)


@dataclass(frozen=True)
class LinkTarget:
    """Where a link points: a stored page (normalised URL) and the fragment, if any."""

    url: str
    fragment: str | None


@dataclass(frozen=True)
class ChunkAnchors:
    """What the mapping needs to know of one stored chunk."""

    chunk_id: int
    anchors: tuple[str, ...]
    """The ids of the sections the chunk holds (today the one it starts in, if any)."""
    content: str = ""
    """The chunk's Markdown, to find a heading whose id is not one of `anchors`."""

    @cached_property
    def headings(self) -> tuple[str, ...]:
        """The heading lines of the chunk's content, lowercased, markup and attribute lists removed."""
        return tuple(
            link_text(_ATTRIBUTES.sub("", line.lstrip("#"))).lower() for line in self.content.splitlines()
            if _HEADING_LINE.match(line)
        )


def link_text(raw: str) -> str:
    """Return a link's Markdown text as a reader sees it: no images, emphasis, backticks or escapes."""
    text = _IMAGE.sub(" ", raw)
    text = _MARKUP.sub("", text)
    return " ".join(text.split())


def is_keyword(text: str) -> bool:
    """Return True when a link text can say what its target is about.

    Not: a bare URL, a symbol ("¶", "#", "→"), a single letter, only stopwords,
    or a navigation word ("[source]", "next", "here").
    """
    if _BARE_URL.fullmatch(text):
        return False
    if text.strip("[]()<>«»→←.:").strip().lower() in _NAVIGATION:
        return False
    return bool(query_terms(text))


def page_links(markdown: str, page_url: str) -> Iterable[tuple[LinkTarget, str]]:
    """Yield (target, text) for each keyword link of one page to another page, in order.

    An entry nested under a list item that is a bare term (an index's "caching" above
    "HTTP") or that only qualifies its parent ("(requests.Session method)" under
    "close()") is read with the parent's term in front: "caching HTTP".
    """
    own = normalize_url(page_url)
    parents: list[tuple[int, str]] = []  # (indent, Markdown) of the open list items
    fence: str | None = None
    for line in markdown.splitlines():
        if (opened := _FENCE.match(line)) is not None:
            marker = opened.group(1)
            if fence is None:
                fence = marker
            elif marker[0] == fence[0] and len(marker) >= len(fence):
                fence = None
            continue
        if fence is not None:
            continue
        item = _LIST_ITEM.match(line)
        prefix = ""
        if item is not None:
            indent, body = len(item.group(1)), item.group(2)
            while parents and parents[-1][0] >= indent:
                parents.pop()
            if parents and body.startswith("["):
                prefix = _parent_term(parents[-1][1], qualifier=body.startswith("[("))
            parents.append((indent, body))
        elif line.strip() and not line.startswith(" "):
            parents.clear()
        if "](" not in line:
            continue
        for match in _LINK.finditer(line):
            target = _target(match.group(2), own)
            if target is None:
                continue
            text = link_text(match.group(1))
            if prefix and match.start() == line.index("[") and not text.lower().startswith(prefix.lower()):
                text = f"{prefix} {text}"
            if is_keyword(text):
                yield target, text


def _parent_term(body: str, *, qualifier: bool) -> str:
    """Return the term an index entry's parent item lends it: "" unless the parent is a bare term or the entry
    only qualifies it; the parent's own qualifier is left out ("close() (Session method)" → "close()")."""
    if not qualifier and "](" in body and _LINK.search(body):
        return ""
    return _QUALIFIER_TAIL.sub("", link_text(_LINK.sub(r"\1", body)))


def _target(href: str, own: str) -> LinkTarget | None:
    """Return where `href` points, or None for a link to the page itself or off the web."""
    href = href[1:-1] if href.startswith("<") else href
    page, _, fragment = href.partition("#")
    url = _page_url(page)
    if url is None or url == own:
        return None
    return LinkTarget(url, unquote(fragment) or None)


@lru_cache(maxsize=16384)
def _page_url(href: str) -> str | None:
    """Return the normalised page URL of an absolute link without its fragment, None when not a web page."""
    if not is_web_url(href):
        return None
    try:
        return normalize_url(href)
    except ValueError:
        return None


def collect_link_texts(pages: Mapping[str, str]) -> dict[LinkTarget, list[str]]:
    """Return the distinct link texts pointing at each (page, fragment) among `pages` ({url: Markdown}).

    Only links between the given pages count. Texts are de-duplicated case-insensitively
    and ordered by how many links use them (then first seen): the most common name first.
    """
    known = {normalize_url(url) for url in pages}
    counts: dict[LinkTarget, dict[str, tuple[int, str]]] = {}
    for url, markdown in pages.items():
        for target, text in page_links(markdown, url):
            if target.url not in known:
                continue
            texts = counts.setdefault(target, {})
            key = text.lower()
            seen, first = texts.get(key, (0, text))
            texts[key] = (seen + 1, first)
    return {
        target: [text for _, text in sorted(texts.values(), key=lambda entry: -entry[0])]
        for target, texts in counts.items()
    }


def heading_lines(markdown: str) -> dict[str, str]:
    """Return {anchor: heading line without its `{#anchor}`} for the page's anchored headings.

    The chunker keeps a heading's line in the chunk's content and only drops the
    attribute list, so the line finds the chunk a sub-section was packed into.
    """
    found: dict[str, str] = {}
    for match in _HEADING_ANCHOR.finditer(markdown):
        line = match.group(0)
        found.setdefault(match.group(2), line[: line.index(match.group(1)) + len(match.group(1))])
    return found


def chunk_for(
    chunks: Sequence[ChunkAnchors], fragment: str | None, heading: str | None = None, names: Sequence[str] = ()
) -> int | None:
    """Return the id of the chunk a link to `fragment` of this page points at; None for a page without chunks.

    In order: the first chunk holding the anchor (a long section's later parts repeat it,
    but its keywords belong where it starts); the chunk whose content holds the heading
    line that carries the anchor (a sub-section packed into its neighbour); the one chunk
    with a heading that names what the links call the target (an anchor placed beside a
    heading, as SQLite's `<a name="altertabaddcol">` before "ALTER TABLE ADD COLUMN");
    else the page's first chunk: an id inside a paragraph is not knowable from Markdown,
    and the page is still the right one.

    Args:
        chunks: the page's chunks in order.
        fragment: the link's fragment, None for a link to the whole page.
        heading: the page's heading line for `fragment` (see `heading_lines`), if it has one.
        names: the texts of the links to the target, most common first.
    """
    if not chunks:
        return None
    if fragment:
        for chunk in chunks:
            if fragment in chunk.anchors:
                return chunk.chunk_id
        if heading:
            for chunk in chunks:
                if any(line.rstrip() == heading for line in chunk.content.splitlines()):
                    return chunk.chunk_id
        for name in names:
            phrase = re.compile(r"(?<!\w)" + re.escape(name.lower()) + r"(?!\w)")
            named = [chunk for chunk in chunks if any(phrase.search(h) for h in chunk.headings)]
            if len(named) == 1:
                return named[0].chunk_id
    return chunks[0].chunk_id


def chunk_texts(
    pages: Mapping[str, str], chunks: Mapping[str, Sequence[ChunkAnchors]], max_chars: int = MAX_CHARS
) -> dict[int, str]:
    """Return the inbound link text of each chunk that has some: {chunk id: text}.

    Args:
        pages: every stored page of one source, {url: Markdown}.
        chunks: each page's chunks in order, {url: chunks}.
        max_chars: the most text one chunk gets; the most common names are kept first.
    """
    collected: dict[int, list[str]] = {}
    headings: dict[str, dict[str, str]] = {}
    by_url = {normalize_url(url): url for url in pages}
    for target, texts in collect_link_texts(pages).items():
        url = by_url[target.url]
        heading = None
        if target.fragment:
            if url not in headings:
                headings[url] = heading_lines(pages[url])
            heading = headings[url].get(target.fragment)
        chunk_id = chunk_for(chunks.get(url, ()), target.fragment, heading, texts)
        if chunk_id is not None:
            collected.setdefault(chunk_id, []).extend(texts)
    return {chunk_id: _capped(texts, max_chars) for chunk_id, texts in collected.items()}


def _capped(texts: list[str], max_chars: int) -> str:
    """Join distinct texts (case-insensitively) with newlines, stopping before `max_chars`."""
    kept: list[str] = []
    seen: set[str] = set()
    size = 0
    for text in texts:
        key = text.lower()
        if key in seen:
            continue
        if size + len(text) > max_chars:
            continue
        seen.add(key)
        kept.append(text)
        size += len(text) + 1
    return "\n".join(kept)

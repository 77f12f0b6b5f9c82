"""What a response is (HTML, Markdown, text or unwanted) and how to turn its bytes into text."""

from __future__ import annotations

import codecs
import re
from posixpath import splitext
from urllib.parse import urlsplit

from docshelf.crawl.base import ContentKind

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
MARKDOWN_TYPES = frozenset({"text/markdown", "text/x-markdown"})
MARKDOWN_EXTENSIONS = frozenset({".md", ".markdown"})
TEXT_EXTENSIONS = frozenset({".txt"})
RST_TYPES = frozenset({"text/x-rst", "text/prs.fallenstein.rst"})
NOTEBOOK_TYPES = frozenset({"application/x-ipynb+json"})
API_DESCRIPTION_TYPES = frozenset({"application/json", "application/yaml", "application/x-yaml", "text/yaml",
                                   "text/x-yaml", "application/vnd.oai.openapi", "application/vnd.oai.openapi+json"})
API_DESCRIPTION_EXTENSIONS = frozenset({".json", ".yaml", ".yml"})
# Servers that do not know a file's type send one of these; the extension then says what it is.
UNTYPED = frozenset({"text/plain", "application/octet-stream", ""})

# Browsers read these labels as windows-1252 (WHATWG Encoding), and so do pages written for them.
_CHARSET_ALIASES = {"iso-8859-1": "cp1252", "latin1": "cp1252", "latin-1": "cp1252", "us-ascii": "cp1252"}
_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))  # fmt: skip
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([\w.:-]+)""", re.IGNORECASE)
_CONTROL_BYTES = frozenset(range(0x20)) - {0x09, 0x0A, 0x0C, 0x0D, 0x1B} | {0x7F}


def media_type(content_type: str | None) -> str:
    """Return the lowercased media type of a Content-Type header: `text/HTML; charset=x` → `text/html`."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def header_charset(content_type: str | None) -> str | None:
    """Return the `charset` parameter of a Content-Type header, or None."""
    for param in (content_type or "").split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip(" \"'"):
            return value.strip(" \"'")
    return None


def content_kind(content_type: str | None, url: str, *, include_pdf: bool = False) -> ContentKind | None:
    """Return what a response holds, from its Content-Type and URL, or None when it is not wanted.

    `.md` files served as text/plain or application/octet-stream count as Markdown, since
    many servers do not know the type; a missing Content-Type is guessed from the extension.
    The same goes for `.rst`, `.ipynb` and `.pdf`. JSON and YAML are taken as API descriptions
    (the OpenAPI reader skips any that is not one); PDFs only when `include_pdf`.
    """
    kind = media_type(content_type)
    extension = splitext(urlsplit(url).path)[1].lower()
    if kind in HTML_TYPES:
        return "html"
    if kind in MARKDOWN_TYPES:
        return "markdown"
    untyped = kind in UNTYPED
    if untyped and extension in MARKDOWN_EXTENSIONS:
        return "markdown"
    if kind in RST_TYPES or (untyped and extension == ".rst"):
        return "rst"
    if kind in NOTEBOOK_TYPES or ((untyped or kind == "application/json") and extension == ".ipynb"):
        return "notebook"
    if kind == "application/pdf" or (untyped and extension == ".pdf"):
        return "pdf" if include_pdf else None
    if kind in API_DESCRIPTION_TYPES or (untyped and extension in API_DESCRIPTION_EXTENSIONS):
        return "openapi"
    if kind == "text/plain":
        return "text"
    if not kind:
        return "text" if extension in TEXT_EXTENSIONS else "html"
    return None


def decode(body: bytes, kind: ContentKind, content_type: str | None = None) -> str | None:
    """Return `body` as text, or None when it cannot be read as text.

    The rule: a byte-order mark wins, then a declared UTF-16/32; a body that looks binary
    (NUL or many control bytes) is undecodable; otherwise the first of the declared charset (Content-Type, then an HTML
    `<meta charset>`), UTF-8 and windows-1252 that decodes the whole body strictly is used.
    windows-1252 comes last because pages mislabelled as UTF-8 are most often Windows text.
    """
    for bom, encoding in _BOMS:
        if body.startswith(bom):
            return _strict(body, encoding)
    declared = _codec(header_charset(content_type) or (meta_charset(body) if kind == "html" else None))
    if declared and declared.startswith(("utf-16", "utf-32")):
        return _strict(body, declared)  # the one case where NUL bytes are text
    if looks_binary(body):
        return None
    for encoding in dict.fromkeys(filter(None, (declared, "utf-8", "cp1252"))):
        text = _strict(body, encoding)
        if text is not None:
            return text
    return None


def looks_binary(body: bytes) -> bool:
    """Return True when `body` holds a NUL byte or more than 1% control bytes, as no text page does."""
    if b"\x00" in body:
        return True
    sample = body[:8192]
    return sum(byte in _CONTROL_BYTES for byte in sample) > len(sample) / 100


def meta_charset(body: bytes) -> str | None:
    """Return the charset an HTML document declares in a `<meta>` tag near its start, or None."""
    match = _META_CHARSET.search(body[:4096])
    return match.group(1).decode("ascii", "ignore") if match else None


def _codec(charset: str | None) -> str | None:
    """Return the Python codec for a declared charset, or None when Python does not know it."""
    if not charset:
        return None
    charset = _CHARSET_ALIASES.get(charset.lower(), charset)
    try:
        return codecs.lookup(charset).name
    except LookupError:
        return None


def _strict(body: bytes, encoding: str) -> str | None:
    """Return `body` decoded with `encoding`, or None if any byte is invalid in it."""
    try:
        return body.decode(encoding)
    except UnicodeDecodeError:
        return None

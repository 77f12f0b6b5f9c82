"""The extract pipeline: a fetched document in, its title and clean Markdown out.

Pure functions: no network, no disk. Each step below is one module's job.
"""

from __future__ import annotations

from dataclasses import dataclass

from selectolax.lexbor import LexborHTMLParser

from docshelf.errors import ExtractError
from docshelf.extract.anchors import api_entries_to_headings, assign_heading_ids, mark_heading_anchors
from docshelf.extract.blocks import (
    admonitions_to_blockquotes,
    definition_lists_to_paragraphs,
    layout_tables_to_blocks,
    tabs_to_sections,
)
from docshelf.extract.cleanup import remove_boilerplate
from docshelf.extract.codeblocks import normalize_code_blocks
from docshelf.extract.links import base_url, rewrite_images, rewrite_links
from docshelf.extract.main_content import find_main_content
from docshelf.extract.markdown import html_to_markdown
from docshelf.extract.title import html_title, markdown_title, text_title, url_name


@dataclass
class Extracted:
    """A document reduced to what docshelf stores: its title and its main content as Markdown."""

    title: str
    """The main content's <h1>, else <title> without the site suffix, else ""."""
    markdown: str
    """Clean Markdown of the main content, ending with exactly one newline."""


def prepare_main_content(html: str, url: str) -> tuple[str, str]:
    """Return the page title and the HTML of its main content, rewritten for conversion to Markdown.

    Raises:
        ExtractError: no element with text is left once navigation and chrome are removed.
    """
    tree = LexborHTMLParser(html)
    if tree.body is None:
        raise ExtractError(url, "no main content")
    assign_heading_ids(tree.body)
    remove_boilerplate(tree.body)
    found = find_main_content(tree)
    if found is None:
        raise ExtractError(url, "no main content")
    _, main = found
    title = html_title(tree, main)
    base = base_url(tree, url)
    normalize_code_blocks(tree, main)
    api_entries_to_headings(tree, main)
    mark_heading_anchors(main)
    tabs_to_sections(tree, main)
    admonitions_to_blockquotes(tree, main)
    definition_lists_to_paragraphs(tree, main)
    layout_tables_to_blocks(tree, main)
    rewrite_images(main, base)
    rewrite_links(main, base)
    return title, main.html or ""


def extract_html(html: str, url: str) -> Extracted:
    """Return the title and Markdown of an HTML page's main content.

    Args:
        html: the page as fetched.
        url: the page's URL; relative links and images are made absolute against it.

    Raises:
        ExtractError: with reason "no main content" when nothing readable remains.
    """
    title, main_html = prepare_main_content(html, url)
    markdown = html_to_markdown(main_html)
    if not markdown:
        raise ExtractError(url, "no main content")
    return Extracted(title=title, markdown=markdown)


DOCUMENT_KINDS = ("html", "markdown", "text", "rst", "notebook", "openapi", "pdf")


def extract_document(text: str, kind: str, url: str, data: bytes | None = None) -> Extracted:
    """Return the title and Markdown of a document of any kind docshelf reads.

    Args:
        text: the document's text.
        kind: "html" (converted), "markdown" or "text" (passed through with normalised newlines),
            "rst", "notebook", "openapi" or "pdf" (each converted by its module in `extract.formats`).
        url: where the document came from; its last segment is the fallback title.
        data: the bytes of a binary document ("pdf").

    Raises:
        ExtractError: the document has no content, or is malformed (with the reason).
        ValueError: `kind` is not one of `DOCUMENT_KINDS`.
    """
    if kind == "html":
        return extract_html(text, url)
    if kind in ("rst", "notebook", "openapi", "pdf"):
        return _extract_format(text, kind, url, data)
    if kind not in ("markdown", "text"):
        raise ValueError(f"unknown document kind {kind!r}: expected one of {', '.join(DOCUMENT_KINDS)}")
    body = _pass_through(text)
    if not body.strip():
        raise ExtractError(url, "empty document")
    found = markdown_title(body) if kind == "markdown" else text_title(body)
    return Extracted(title=found or url_name(url), markdown=body)


def _extract_format(text: str, kind: str, url: str, data: bytes | None) -> Extracted:
    """Return the title and Markdown of an rst, notebook, OpenAPI or PDF document."""
    # Imported here: each format pulls in its parser (docutils, nbformat, PyYAML, pypdf), and most crawls need none.
    if kind == "rst":
        from docshelf.extract.formats.rst import rst_to_html

        return extract_html(rst_to_html(text, url), url)
    if kind == "pdf":
        from docshelf.extract.formats.pdf import pdf_to_markdown

        if data is None:
            raise ExtractError(url, "a PDF needs its bytes")
        title, markdown = pdf_to_markdown(data, url)
        return Extracted(title=title or url_name(url), markdown=markdown)
    if kind == "openapi":
        from docshelf.extract.formats.openapi import openapi_to_markdown

        title, markdown = openapi_to_markdown(text, url)
        return Extracted(title=title, markdown=markdown)
    from docshelf.extract.formats.notebook import notebook_to_markdown

    markdown = notebook_to_markdown(text, url)
    if not markdown.strip():
        raise ExtractError(url, "empty notebook")
    return Extracted(title=markdown_title(markdown) or url_name(url), markdown=markdown)


def _pass_through(text: str) -> str:
    """Return `text` with `\\n` line endings and exactly one final newline."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").strip("\n")
    return text + "\n" if text else ""

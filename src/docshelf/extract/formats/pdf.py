"""PDF → Markdown through pypdf: sections from the outline (bookmarks), else from font sizes; page anchors.

Every section heading carries the anchor of the page it starts on (`## Install {#page-3}`;
two sections starting on one page share it), so a citation opens the PDF at that page (`file.pdf#page-3`; viewers read `#page=3`,
and the anchor is what the shelf's pages and chunks use). A PDF with neither an outline
nor larger fonts gets one `## Page N {#page-N}` heading per page.
"""

from __future__ import annotations

import io
import logging
import re
from collections import Counter
from dataclasses import dataclass

from docshelf.errors import ExtractError

MAX_PAGES = 500
"""Pages read from one PDF; a manual longer than this is cut (the rest would dominate a source)."""
HEADING_RATIO = 1.2
"""A line whose font is this much larger than the body text's is a heading (when there is no outline)."""
MAX_HEADING_CHARS = 120


@dataclass
class _Line:
    text: str
    size: float


def pdf_to_markdown(data: bytes, url: str, *, max_pages: int = MAX_PAGES) -> tuple[str, str]:
    """Return the title and Markdown of a PDF.

    Raises:
        ExtractError: the PDF is encrypted (and opens with no empty password), damaged, or has no text.
    """
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # pypdf logs every repaired xref; the outcome says enough
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise ExtractError(url, "encrypted PDF: it needs a password docshelf does not have")
        pages = reader.pages[:max_pages]
        outline = _outline(reader)
        lines = [_page_lines(page) for page in pages]
        title = str((reader.metadata or {}).get("/Title") or "").strip()
    except ExtractError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, OSError) as exc:
        raise ExtractError(url, f"damaged PDF: {exc}") from exc
    except Exception as exc:  # pypdf raises assorted errors on damaged files; the page fails, the crawl goes on
        if type(exc).__name__ == "DependencyError":
            raise ExtractError(url, f"encrypted PDF: {exc}") from exc
        raise ExtractError(url, f"damaged PDF: {exc}") from exc
    if not any(line.text.strip() for page in lines for line in page):
        raise ExtractError(url, "no text in PDF (scanned pages need OCR, which docshelf does not do)")
    markdown = _with_outline(lines, outline) if outline else _with_font_headings(lines)
    if len(reader.pages) > max_pages:
        markdown += f"\n(The PDF has {len(reader.pages)} pages; docshelf read the first {max_pages}.)\n"
    if not title:
        title = next((t for _, t, _ in outline), "") or _first_heading(markdown)
    return title, markdown


def _outline(reader: object) -> list[tuple[int, str, int]]:
    """Return the outline as (level, title, page index), in document order; [] when there is none."""
    found: list[tuple[int, str, int]] = []

    def walk(items: list, level: int) -> None:
        for item in items:
            if isinstance(item, list):
                walk(item, level + 1)
                continue
            try:
                page = reader.get_destination_page_number(item)  # type: ignore[attr-defined]
            except Exception:  # noqa: BLE001, S112 -- an outline entry pointing nowhere is dropped, not fatal
                continue
            title = " ".join(str(getattr(item, "title", "") or "").split())
            if title and page is not None and page >= 0:
                found.append((level, title, page))

    try:
        walk(reader.outline, 0)  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 -- a damaged outline: sections come from font sizes instead
        return []
    return found


def _page_lines(page: object) -> list[_Line]:
    """Return a page's text lines with the largest font size on each."""
    lines: list[_Line] = []
    current: list[str] = []
    size = 0.0

    def visit(text: str, cm: list, tm: list, font: object, font_size: float) -> None:
        nonlocal size
        scale = abs(tm[3] * cm[3]) if tm and cm and tm[3] and cm[3] else 1.0
        parts = text.split("\n")
        for index, part in enumerate(parts):
            if index:
                _end_line()
            if part.strip():
                current.append(part)
                size = max(size, float(font_size or 0) * scale)

    def _end_line() -> None:
        nonlocal size
        text = " ".join("".join(current).split())
        if text:
            lines.append(_Line(text, size))
        current.clear()
        size = 0.0

    page.extract_text(visitor_text=visit)  # type: ignore[attr-defined]
    _end_line()
    return lines


def _with_outline(pages: list[list[_Line]], outline: list[tuple[int, str, int]]) -> str:
    """Return the Markdown of the pages, a heading for each outline entry where its title appears on its page."""
    out: list[str] = []
    starts: dict[int, list[tuple[int, str]]] = {}
    for level, title, page in outline:
        starts.setdefault(page, []).append((level, title))
    for number, lines in enumerate(pages, start=1):
        texts = [line.text for line in lines]
        headings = starts.get(number - 1, [])
        for level, title in headings:
            heading = "#" * min(level + 1, 6) + f" {title} {{#page-{number}}}"
            match = next((i for i, text in enumerate(texts) if text.strip().lower() == title.lower()), None)
            if match is None:
                texts.insert(0, heading)  # the title is only in the outline: the section starts at the page top
            else:
                texts[match] = heading
        out.append(_paragraphs(texts))
    return "\n\n".join(part for part in out if part).strip() + "\n"


def _with_font_headings(pages: list[list[_Line]]) -> str:
    """Return the Markdown of the pages, lines set in larger fonts as headings; "Page N" headings without any."""
    sizes: Counter[float] = Counter()
    for lines in pages:
        for line in lines:
            sizes[round(line.size, 1)] += len(line.text)
    body = sizes.most_common(1)[0][0] if sizes else 0.0
    heading_sizes = sorted({round(line.size, 1) for lines in pages for line in lines
                            if body and line.size >= body * HEADING_RATIO and len(line.text) <= MAX_HEADING_CHARS},
                           reverse=True)[:3]
    out: list[str] = []
    for number, lines in enumerate(pages, start=1):
        texts: list[str] = []
        for line in lines:
            if round(line.size, 1) in heading_sizes:
                level = heading_sizes.index(round(line.size, 1)) + 1
                texts.append("#" * level + f" {line.text} {{#page-{number}}}")
            else:
                texts.append(line.text)
        if not heading_sizes:
            texts.insert(0, f"## Page {number} {{#page-{number}}}")
        out.append(_paragraphs(texts))
    return "\n\n".join(part for part in out if part).strip() + "\n"


def _paragraphs(texts: list[str]) -> str:
    """Return lines as Markdown: headings on their own, other lines joined into paragraphs."""
    blocks: list[str] = []
    paragraph: list[str] = []
    for text in texts:
        if text.startswith("#"):
            if paragraph:
                blocks.append(" ".join(paragraph))
                paragraph = []
            blocks.append(text)
        elif text.strip():
            # A line that starts a sentence after one that ended a sentence is a new paragraph.
            if paragraph and re.search(r"[.:!?]$", paragraph[-1]) and text[:1].isupper():
                blocks.append(" ".join(paragraph))
                paragraph = []
            paragraph.append(_escape(text))
    if paragraph:
        blocks.append(" ".join(paragraph))
    return "\n\n".join(blocks)


def _escape(text: str) -> str:
    """Keep a text line from reading as Markdown structure (a heading, a fence, a list item)."""
    if re.match(r"^(#|```|~~~|[-*+] |>)", text):
        return "\\" + text
    return re.sub(r"^(\d+)\. ", r"\1\\. ", text)


def _first_heading(markdown: str) -> str:
    match = re.search(r"^#+ (.+?)(?: \{#[^}]*\})?$", markdown, re.MULTILINE)
    return match.group(1) if match else ""

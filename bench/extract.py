"""Compare HTML → Markdown converters inside docshelf's extract pipeline; print one Markdown table.

Every converter gets the same input: the main content found, cleaned and
prepared by docshelf.extract (plain code blocks, `{#id}` headings, absolute
links). Only the conversion differs; the whitespace normalisation after it is
shared too. Speed is the whole pipeline (detection + conversion) over every
page of the three Debian documentation sites; quality is measured on the test
fixtures plus a fixed sample of 30 Debian pages, against what the prepared HTML
holds:

- code blocks kept: a code block of the output has exactly the code's text;
- fenced with language: ...in a ``` fence whose info string is the language;
- tables kept: a pipe table with as many rows as the HTML table;
- anchors kept: the heading keeps its `{#id}`;
- empty links: `[](` in the output; escaped underscores: `\\_` outside code.

Usage: python bench/extract.py [--limit N]   (N pages per site for a quick run)
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import html2text
import markdownify
from bs4 import Tag
from markdown_it import MarkdownIt
from markdown_it.token import Token
from selectolax.lexbor import LexborHTMLParser, LexborNode

from docshelf.errors import ExtractError
from docshelf.extract.document import prepare_main_content
from docshelf.extract.dom import ancestors
from docshelf.extract.markdown import html_to_markdown, normalize_markdown

DEBIAN_SITES = (
    Path("/usr/share/doc/python-flask-doc/html"),
    Path("/usr/share/doc/python-requests-doc/html"),
    Path("/usr/share/doc/sqlite3"),
)
FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "sites"
SAMPLE_PER_SITE = 10


def _markdownify(html: str) -> str:
    """Return markdownify's Markdown, configured as close to docshelf's rules as it allows."""
    converter = markdownify.MarkdownConverter(
        heading_style=markdownify.ATX,
        bullets="-",
        escape_underscores=False,
        escape_asterisks=False,
        escape_misc=False,
        newline_style=markdownify.BACKSLASH,
        code_language_callback=_code_language,
    )
    return normalize_markdown(converter.convert(html))


def _code_language(pre: Tag) -> str | None:
    """Return the language of a prepared `<pre><code class="language-x">` for markdownify."""
    code = pre.find("code")
    for name in (code.get("class") or []) if isinstance(code, Tag) else []:
        if name.startswith("language-"):
            return name.removeprefix("language-")
    return None


def _html2text(html: str) -> str:
    """Return html2text's Markdown with line wrapping off."""
    converter = html2text.HTML2Text()
    converter.body_width = 0
    return normalize_markdown(converter.handle(html))


CONVERTERS: dict[str, Callable[[str], str]] = {
    "html-to-markdown (chosen)": html_to_markdown,
    "markdownify": _markdownify,
    "html2text": _html2text,
}


@dataclass
class Expected:
    """What the prepared HTML of one page holds, to check a conversion against."""

    code: list[tuple[str, str]] = field(default_factory=list)
    """(text, language) of each code block."""
    table_rows: list[int] = field(default_factory=list)
    anchors: list[str] = field(default_factory=list)


def expected_from(prepared_html: str) -> Expected:
    """Return the code blocks, table sizes and heading anchors of prepared main-content HTML."""
    root = LexborHTMLParser(prepared_html).body
    assert root is not None
    found = Expected()
    for code in root.css("pre > code"):
        language = next(
            (c[9:] for c in (code.attributes.get("class") or "").split() if c.startswith("language-")), ""
        )
        found.code.append((code.text(deep=True), language))
    for table in root.css("table"):
        if _closest_table(table) is None:
            found.table_rows.append(sum(1 for tr in table.css("tr") if _closest_table(tr) == table.mem_id))
    for heading in root.css("h1, h2, h3, h4, h5, h6"):
        match = re.search(r"\{#([^}]+)\}\s*$", heading.text(deep=True))
        if match:
            found.anchors.append(match.group(1))
    return found


def _closest_table(node: LexborNode) -> int | None:
    """Return the mem_id of the nearest <table> above `node`."""
    return next((p.mem_id for p in ancestors(node) if p.tag == "table"), None)


@dataclass
class Quality:
    """Counts summed over the quality sample for one converter."""

    code_kept: int = 0
    code_total: int = 0
    fenced_with_language: int = 0
    code_with_language: int = 0
    tables_kept: int = 0
    tables_total: int = 0
    anchors_kept: int = 0
    anchors_total: int = 0
    empty_links: int = 0
    escaped_underscores: int = 0


_PARSER = MarkdownIt("commonmark").enable("table")
_INLINE_CODE = re.compile(r"(`+).*?\1", re.DOTALL)


def score(markdown: str, expected: Expected, quality: Quality) -> None:
    """Add one page's conversion to `quality`."""
    tokens = _PARSER.parse(markdown)
    blocks = Counter(
        (t.content.rstrip("\n"), t.info.strip() if t.type == "fence" else None)
        for t in tokens
        if t.type in ("fence", "code_block")
    )
    texts = Counter(text for text, _ in blocks.elements())
    for text, language in expected.code:
        quality.code_total += 1
        quality.code_with_language += bool(language)
        if texts[text.rstrip("\n")] > 0:
            texts[text.rstrip("\n")] -= 1
            quality.code_kept += 1
        if language and blocks[(text.rstrip("\n"), language)] > 0:
            blocks[(text.rstrip("\n"), language)] -= 1
            quality.fenced_with_language += 1
    rows = Counter(_table_sizes(tokens))
    for size in expected.table_rows:
        quality.tables_total += 1
        if rows[size] > 0:
            rows[size] -= 1
            quality.tables_kept += 1
    headings = {t.content for i, t in enumerate(tokens) if i and tokens[i - 1].type == "heading_open"}
    for anchor in expected.anchors:
        quality.anchors_total += 1
        quality.anchors_kept += any(h.endswith(f"{{#{anchor}}}") for h in headings)
    quality.empty_links += markdown.count("[](")
    quality.escaped_underscores += _prose(markdown, tokens).count("\\_")


def _table_sizes(tokens: list[Token]) -> list[int]:
    """Return the number of rows (header included) of each pipe table, in order."""
    sizes: list[int] = []
    rows: int | None = None
    for token in tokens:
        if token.type == "table_open":
            rows = 0
        elif token.type == "tr_open" and rows is not None:
            rows += 1
        elif token.type == "table_close" and rows is not None:
            sizes.append(rows)
            rows = None
    return sizes


def _prose(markdown: str, tokens: list[Token]) -> str:
    """Return the Markdown with code blocks and inline code removed."""
    lines = markdown.split("\n")
    for token in tokens:
        if token.type in ("fence", "code_block") and token.map:
            for i in range(*token.map):
                lines[i] = ""
    return _INLINE_CODE.sub("", "\n".join(lines))


def debian_pages(limit: int | None) -> list[Path]:
    """Return every HTML page of the Debian sites (the first `limit` per site when given)."""
    pages = []
    for site in DEBIAN_SITES:
        found = sorted(p for p in site.rglob("*.html") if p.is_file())
        pages += found[:limit] if limit else found
    return pages


def quality_pages() -> list[Path]:
    """Return the fixture pages plus a fixed random sample of pages from each Debian site."""
    rng = random.Random(20240611)
    sample = []
    for site in DEBIAN_SITES:
        found = sorted(p for p in site.rglob("*.html") if p.is_file())
        sample += rng.sample(found, min(SAMPLE_PER_SITE, len(found)))
    return sorted(FIXTURES.rglob("*.html")) + sample


def read(path: Path) -> str:
    """Return a page's text as the crawler would decode it."""
    return path.read_text(encoding="utf-8", errors="replace")


def measure_speed(
    convert: Callable[[str], str] | None, pages: list[tuple[str, str]]
) -> tuple[float, float, int]:
    """Return pages/s, MB/s and failures of the whole pipeline over `pages` (no conversion when None)."""
    failures = 0
    size = sum(len(html.encode()) for html, _ in pages)
    start = time.perf_counter()
    for html, url in pages:
        try:
            _, prepared = prepare_main_content(html, url)
            if convert is not None:
                convert(prepared)
        except ExtractError:
            failures += 1
    elapsed = time.perf_counter() - start
    return len(pages) / elapsed, size / elapsed / 1e6, failures


def measure_quality(convert: Callable[[str], str], pages: list[Path]) -> tuple[Quality, int]:
    """Return the summed quality counts and the number of failed pages over the quality sample."""
    quality, failures = Quality(), 0
    for path in pages:
        try:
            _, prepared = prepare_main_content(read(path), path.as_uri())
            score(convert(prepared), expected_from(prepared), quality)
        except ExtractError:
            failures += 1
    return quality, failures


def main() -> None:
    """Run the benchmark and print the table."""
    options = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    options.add_argument("--limit", type=int, help="pages per Debian site for the speed run (default: all)")
    args = options.parse_args()
    corpus = [(read(p), p.as_uri()) for p in debian_pages(args.limit)]
    sample = quality_pages()
    megabytes = sum(len(h.encode()) for h, _ in corpus) / 1e6
    print(
        f"speed: {len(corpus)} Debian pages, {megabytes:.1f} MB; quality: {len(sample)} pages "
        f"({len(sample) - 3 * SAMPLE_PER_SITE} fixtures + {3 * SAMPLE_PER_SITE} Debian); Python {sys.version.split()[0]}\n"
    )
    print(
        "| converter | pages/s | MB/s | code blocks kept/total | fenced with language | tables kept "
        "| anchors kept | empty links | escaped `\\_` | failures (speed run / quality) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    pages_s, mb_s, failed = measure_speed(None, corpus)
    print(f"| (detection + cleanup only, baseline) | {pages_s:.0f} | {mb_s:.1f} | | | | | | | {failed} / – |")
    for name, convert in CONVERTERS.items():
        pages_s, mb_s, failed = measure_speed(convert, corpus)
        q, quality_failed = measure_quality(convert, sample)
        print(
            f"| {name} | {pages_s:.0f} | {mb_s:.1f} | {q.code_kept}/{q.code_total} "
            f"| {q.fenced_with_language}/{q.code_with_language} | {q.tables_kept}/{q.tables_total} "
            f"| {q.anchors_kept}/{q.anchors_total} | {q.empty_links} | {q.escaped_underscores} "
            f"| {failed} / {quality_failed} |"
        )


if __name__ == "__main__":
    main()

"""Helpers for the extract tests: the fixture sites, and oracles computed without docshelf."""

from __future__ import annotations

import html
import re
from pathlib import Path

from docshelf.extract import Extracted, extract_html

SITES = Path(__file__).resolve().parent.parent / "fixtures" / "sites"
BASE = "http://127.0.0.1:8000/"


def fixture_html(page: str) -> str:
    """Return the HTML of a fixture page, e.g. "sphinx/api.html"."""
    return (SITES / page).read_text(encoding="utf-8")


def extract_fixture(page: str) -> Extracted:
    """Return the extraction of a fixture page served at BASE + page."""
    return extract_html(fixture_html(page), BASE + page)


_LINE_NUMBERS = re.compile(r'<td class="linenos">.*?</td>', re.DOTALL)
_PRE = re.compile(r"<pre[^>]*>(.*?)</pre>", re.DOTALL)
_BR = re.compile(r"<br\s*/?>")
_TAG = re.compile(r"<[^>]+>")


def raw_code_blocks(page_html: str) -> list[str]:
    """Return the text of each <pre> of a page, computed independently of docshelf with regexes.

    This is the oracle for "code text exact": tags stripped, `<br>` as newline,
    entities decoded, line-number cells left out, trailing newlines dropped.
    """
    page_html = _LINE_NUMBERS.sub("", page_html)
    blocks = []
    for inner in _PRE.findall(page_html):
        text = html.unescape(_TAG.sub("", _BR.sub("\n", inner)))
        blocks.append(text.removeprefix("\n").rstrip("\n"))
    return blocks


def fenced_blocks(markdown: str) -> list[tuple[str, str]]:
    """Return (language, code) of each top-level ``` fenced block of `markdown`."""
    found = []
    for match in re.finditer(r"^(`{3,})([^\n`]*)\n(.*?)\n\1$", markdown, re.DOTALL | re.MULTILINE):
        found.append((match.group(2).strip(), match.group(3)))
    return found


def prose_lines(markdown: str) -> list[str]:
    """Return the lines of `markdown` outside fenced code blocks, each block as one "```" line."""
    lines: list[str] = []
    fence = None
    for line in markdown.split("\n"):
        marker = re.match(r"^ *(`{3,})", line)
        if fence is None and marker:
            fence = marker.group(1)
            lines.append("```")
        elif fence is not None and line.strip() == fence:
            fence = None
        elif fence is None:
            lines.append(line)
    return lines

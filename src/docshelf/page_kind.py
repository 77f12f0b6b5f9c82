"""Recognise, by structure alone, pages that mention everything and answer nothing.

Generated indexes and tables of contents (a list of links), source listings
(one long code block) and release notes (a heading per version, sections
that each cite an issue tracker, or one page per version) match many
queries once each and crowd out the pages that answer. They get a prior below
1 that search multiplies into their scores. Only the Markdown's shape and
text statistics decide — never a URL pattern or a page name — so this holds
for any documentation site.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

PageKind = Literal["content", "navigation", "code_listing", "release_notes"]

PRIORS: dict[PageKind, float] = {"content": 1.0, "navigation": 0.5, "code_listing": 0.5, "release_notes": 0.5}
"""Score multiplier per kind; measured on the dev set (bench/retrieval.py, ablation "page priors off")."""

ISSUE_SECTIONS = 0.25
"""Share of sections citing an issue from which a page is release notes. Measured on 1 517 pages of five
Debian documentation sets: changelogs and migration guides 0.39–0.83, every other page 0.05 or less."""

_FENCED = re.compile(r"^ {0,3}(`{3,}|~{3,}).*?^ {0,3}\1[ \t]*$", re.MULTILINE | re.DOTALL)
_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_HEADING = re.compile(r"^(#{1,6})[ \t]+(.*?)(?:[ \t]*\{#[^}]*\})?[ \t]*$", re.MULTILINE)
_LIST_ITEM = re.compile(r"^[ \t]*(?:[-*+]|\d+[.)])[ \t]")
_TABLE_ROW = re.compile(r"^[ \t]*\|")
_VERSION_OR_DATE = re.compile(r"\bv?\d+\.\d+(?:\.\d+)*\b|\b\d{4}-\d{2}-\d{2}\b", re.IGNORECASE)
_WORD = re.compile(r"[A-Za-z]{2,}")
# A version ("3.40.1", "v2.0") or a date in a page title; parentheses hold release code names.
_TITLE_VERSION = re.compile(r"\bv?\d+(?:\.\d+)+[a-z0-9]*\b|\b\d{4}-\d{2}-\d{2}\b", re.IGNORECASE)
_PARENTHESES = re.compile(r"\([^)]*\)")
_NUMBERED_SECTION = re.compile(r"^\s*\d+(?:\.\d+)*\.\s+\S")
# A link whose whole text names an issue or pull request: "#3054", "gh-1234", "bpo-42", "issue 17", "PR #9".
_ISSUE_LINK = re.compile(r"\[(?:#|gh-|bpo-|(?:issue|ticket|pr|pull request)\s?#?)\d+\]\(", re.IGNORECASE)
_SECTION_BREAK = re.compile(r"^#{1,6}[ \t]", re.MULTILINE)


@dataclass(frozen=True)
class PageProfile:
    """Text statistics of a page's Markdown."""

    code_share: float
    """Share of characters inside fenced code blocks."""
    link_share: float
    """Share of prose characters (outside code, link targets dropped, whitespace collapsed) that are link text."""
    list_share: float
    """Share of non-blank prose lines that are entries: list items, table rows, or lines that are mostly a link
    (a generated index may render its entries as any of the three)."""
    headings: int
    """Headings at one level (h2, h3…): the level with five or more that has the largest share of releases."""
    release_headings: int
    """Of those, the ones that are a version number or a date and little else ("2.32.3 (2024-05-29)").

    Counted per level because a changelog often files each version's entries under sub-headings
    ("orm", "engine", "Bug fixes") that outnumber the versions, and may open with a few other sections."""
    issue_sections: float
    """Share of sections (text between headings) that link an issue or pull request by number ("#3054",
    "gh-1234"): changelogs and "what's new" guides cite one per entry; other pages almost never do."""

    @property
    def kind(self) -> PageKind:
        """Return what kind of page this profile describes."""
        if self.code_share > 0.85:
            return "code_listing"
        if self.link_share > 0.5 and self.list_share > 0.6:
            return "navigation"
        if self.headings >= 5 and self.release_headings > 0.5 * self.headings:
            return "release_notes"
        if self.headings >= 5 and self.issue_sections >= ISSUE_SECTIONS:
            return "release_notes"
        return "content"


def profile_page(markdown: str) -> PageProfile:
    """Return the text statistics of a page's Markdown."""
    code = sum(len(m.group(0)) for m in _FENCED.finditer(markdown))
    prose = _FENCED.sub("", markdown)
    link_text = sum(len(_squash(text)) for text in _LINK.findall(prose))
    lines = [line for line in prose.splitlines() if line.strip() and not line.startswith("#")]
    plain_length = sum(len(_squash(_LINK.sub(lambda m: m.group(1), line))) for line in lines)
    headings, release_headings = _release_level(_HEADING.findall(markdown))
    sections = _SECTION_BREAK.split(prose)
    return PageProfile(
        code_share=code / max(len(markdown), 1),
        link_share=link_text / max(plain_length, 1),
        list_share=sum(1 for line in lines if _is_entry(line)) / max(len(lines), 1),
        headings=headings,
        release_headings=release_headings,
        issue_sections=sum(1 for section in sections if _ISSUE_LINK.search(section)) / len(sections),
    )


def _is_entry(line: str) -> bool:
    """Return whether a Markdown line is a list item, a table row, or mostly the text of links."""
    if _LIST_ITEM.match(line) or _TABLE_ROW.match(line):
        return True
    link_text = sum(len(_squash(text)) for text in _LINK.findall(line))
    return link_text > 0.5 * len(_squash(_LINK.sub(lambda m: m.group(1), line)))


def _squash(text: str) -> str:
    return " ".join(text.split())


def page_prior(markdown: str) -> float:
    """Return the search prior of a page: 1 for content, less for pages that crowd out answers."""
    return PRIORS[profile_page(markdown).kind]


SERIES_PAGES = 3
"""Pages of one source titled alike but for a version from which they are release notes, one page per release."""


def version_series(titles: Mapping[str, str]) -> set[str]:
    """Return the pages, of one source's {url: title}, that are one of a series of per-version pages.

    "SQLite Release 3.40.1 On 2022-12-28", "What's new in Celery 5.2 (Dawn Chorus)", "Django REST
    framework 3.13": at least SERIES_PAGES titles that differ only in their version (or date, or a
    parenthesised code name) are a release history cut into pages. A single page that names a
    version ("Migrating to 2.0", "The 1.4 / 2.0 Tutorial") is not.
    """
    series: dict[str, list[str]] = defaultdict(list)
    for url, title in titles.items():
        if names_a_version(title):
            pattern = " ".join(_TITLE_VERSION.sub("<version>", _PARENTHESES.sub(" ", title)).lower().split())
            series[pattern].append(url)
    return {url for urls in series.values() if len(urls) >= SERIES_PAGES for url in urls}


def version_series_pages(pages: Iterable[tuple[str, str, str | None]]) -> set[str]:
    """Return the per-version pages among (url, source, title) rows of any number of sources."""
    by_source: dict[str, dict[str, str]] = defaultdict(dict)
    for url, source, title in pages:
        by_source[source][url] = title or ""
    return set().union(*map(version_series, by_source.values()))


def names_a_version(title: str | None) -> bool:
    """Return whether a page title holds a version or a date, as every page of a version series does."""
    return bool(title and _TITLE_VERSION.search(title))


def _release_level(headings: list[tuple[str, str]]) -> tuple[int, int]:
    """Return (headings, release headings) at the level of five or more headings with most releases."""
    counts: dict[int, list[int]] = {}
    for marks, text in headings:
        level = counts.setdefault(len(marks), [0, 0])
        level[0] += 1
        level[1] += _is_release_heading(text)
    levels = [(n, r) for n, r in counts.values() if n >= 5]
    if not levels:
        return len(headings), sum(r for _, r in counts.values())
    return max(levels, key=lambda nr: (nr[1] / nr[0], nr[0]))


def _is_release_heading(heading: str) -> bool:
    # "Version 2.0.1", "2.32.3 (2024-05-29)", "2024-01-15 (3.45.0)" — but not numbered
    # sections such as "2.1. Query planning" or "1.1. Lookup" (a number closed by a dot, then words).
    if not _VERSION_OR_DATE.search(heading) or _NUMBERED_SECTION.match(heading):
        return False
    return len(_WORD.findall(_VERSION_OR_DATE.sub(" ", heading))) <= 2

"""Titles, summaries and embedding text for chunks, extracted from the page without an LLM.

The formats, decided here and pinned by tests/test_enrich.py:

- title: `Page title — Heading › Subheading`. When the page's first heading begins its title
  (a page titled "Configuration Handling — Flask Documentation (3.1.x)" under a
  "Configuration Handling" heading), that heading stands for the page. Titles longer than
  `TITLE_MAX_CHARS` lose their middle headings first (`Page — A › … › D`).
- summary: the chunk's own prose as plain text (no headings, code or tables; links reduced to
  their text, emphasis and backticks dropped), the first sentences that fit `max_chars`. A cut
  at a sentence boundary ends there; a cut inside a sentence ends at a word with "…". A chunk
  without prose is described instead: "Code example (python, 42 lines)", "Table: name, type
  (12 rows)".
- embedding text: the title, the heading path (when the title does not already name every
  heading), then the content as plain text with code kept verbatim.

`Enricher` is the seam for an LLM-written title and summary; `ExtractiveEnricher` is the default.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from functools import lru_cache
from typing import Protocol

from markdown_it import MarkdownIt
from markdown_it.token import Token

from docshelf.embed.tokenizer import count_tokens
from docshelf.models import Section

TITLE_MAX_CHARS = 120
SUMMARY_MAX_CHARS = 300
PAGE_SEPARATOR = " — "
HEADING_SEPARATOR = " › "
ELLIPSIS = "…"

_PARSER = MarkdownIt("commonmark").enable("table")
# After terminal punctuation, possibly closed by a quote or bracket.
_SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+|(?<=[.!?][\"')\]])\s+")
_TRAILING_PUNCTUATION = " ,;:-–—"
# What `embedding_text` leaves out of a piece of Markdown, found without parsing it: link targets,
# fence lines, table separator rows, block markers at the start of a line, and emphasis/code marks.
_NOT_EMBEDDED = re.compile(
    r"\]\((?:<[^>\n]*>|[^)\s]*)(?:\s+\"[^\"\n]*\")?\)"
    r"|^[ \t]*(?:`{3,}|~{3,}).*$"
    r"|^[ \t|:-]*-{3,}[ \t|:-]*$"
    r"|^[ \t]*(?:>[ \t]?|#{1,6}[ \t]|[-*+][ \t]|\d{1,9}[.)][ \t])+"
    r"|!?\[|[*`]",
    re.MULTILINE,
)


class Enricher(Protocol):
    """Gives each chunk of a page a title and a summary."""

    def enrich(self, page_title: str, sections: Sequence[Section]) -> list[tuple[str, str]]:
        """Return one (title, summary) pair per section, in order."""
        ...


class ExtractiveEnricher:
    """The default enricher: deterministic, no model, titles and summaries taken from the page itself."""

    def enrich(self, page_title: str, sections: Sequence[Section]) -> list[tuple[str, str]]:
        """Return one (title, summary) pair per section, in order."""
        return [(chunk_title(page_title, s.heading_path), chunk_summary(s.content)) for s in sections]


def chunk_title(page_title: str, heading_path: list[str], *, max_chars: int = TITLE_MAX_CHARS) -> str:
    """Return `Page — Heading › Subheading` for a chunk, at most `max_chars` long.

    Args:
        page_title: the page's title, possibly with a site suffix.
        heading_path: the headings enclosing the chunk, from the top of the page down.
        max_chars: the longest title; middle headings are replaced by "…" first, then the title
            is cut at a word.
    """
    page, headings = _title_parts(page_title, heading_path)
    title = ""
    for kept in _shortenings(headings):
        title = _join_title(page, kept)
        if len(title) <= max_chars:
            return title
    return _cut_at_word(title, max_chars)


def _title_parts(page_title: str, heading_path: list[str]) -> tuple[str, list[str]]:
    """Return the page part and the heading parts of a title, whitespace collapsed."""
    page = _squash(page_title)
    headings = [h for h in map(_squash, heading_path) if h]
    if headings and _begins_with(page, headings[0]):
        page = headings.pop(0)
    return page, headings


def _begins_with(page_title: str, heading: str) -> bool:
    """Return whether the page title is the heading, or the heading and a suffix such as the site's name."""
    folded_title, folded_heading = page_title.casefold(), heading.casefold()
    rest = folded_title.removeprefix(folded_heading)
    return folded_title.startswith(folded_heading) and not rest[:1].isalnum()


def _shortenings(headings: list[str]) -> list[list[str]]:
    """Return the heading lists to try, from all of them to the last one alone, "…" marking gaps."""
    tries = [headings]
    tries += [[headings[0], ELLIPSIS, *headings[start:]] for start in range(2, len(headings))]
    if len(headings) > 1:
        tries.append([ELLIPSIS, headings[-1]])
    return tries


def _join_title(page: str, headings: list[str]) -> str:
    """Return the title text for a page part and heading parts, either possibly empty."""
    path = HEADING_SEPARATOR.join(headings)
    return PAGE_SEPARATOR.join(part for part in (page, path) if part)


def chunk_summary(content: str, max_chars: int = SUMMARY_MAX_CHARS) -> str:
    """Return a plain-text summary of a chunk's Markdown, at most `max_chars` long.

    The first sentences of the chunk's prose; for a chunk without prose, a description of its
    code and tables; for a chunk of headings only, the headings.
    """
    tokens = _parse(content)
    prose = " ".join(_inline_text(tokens[i + 1]) for i, t in enumerate(tokens) if t.type == "paragraph_open")
    summary = _first_sentences(_squash(prose), max_chars)
    if not summary:
        summary = _describe(tokens) or _heading_text(tokens) or _squash(" ".join(_plain_blocks(tokens)))
    return summary if len(summary) <= max_chars else _cut_at_word(summary, max_chars)


def _first_sentences(text: str, max_chars: int) -> str:
    """Return the sentences from the start of `text` that fit `max_chars`, or its first words and "…"."""
    if len(text) <= max_chars:
        return text
    summary = ""
    for sentence in _SENTENCE_BREAK.split(text):
        candidate = f"{summary} {sentence}" if summary else sentence
        if len(candidate) > max_chars:
            break
        summary = candidate
    return summary or _cut_at_word(text, max_chars)


def _cut_at_word(text: str, max_chars: int) -> str:
    """Return `text` cut at the last word boundary that leaves room for "…", with "…" appended."""
    cut = text[: max_chars - len(ELLIPSIS)]
    if text[len(cut) : len(cut) + 1].strip() and " " in cut:  # the cut fell inside a word
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(_TRAILING_PUNCTUATION) + ELLIPSIS


def _describe(tokens: Sequence[Token]) -> str:
    """Return a description of the code blocks and tables in a chunk, or "" if it has none."""
    descriptions = []
    code = [t for t in tokens if t.type in ("fence", "code_block")]
    if code:
        # The language is the info string's first word, also in Pandoc's `{.python}` form.
        languages = list(
            dict.fromkeys(filter(None, (t.info.split()[0].strip("{}.") for t in code if t.info.strip())))
        )
        lines = sum(t.content.count("\n") for t in code)
        what = "Code example" if len(code) == 1 else f"{len(code)} code examples"
        details = ", ".join(filter(None, (", ".join(languages), _plural(lines, "line"))))
        descriptions.append(f"{what} ({details})")
    for index, token in enumerate(tokens):
        if token.type == "table_open":
            descriptions.append(_describe_table(tokens[index:]))
    return "; ".join(descriptions)


def _describe_table(tokens: Sequence[Token]) -> str:
    """Return "Table: col, col (n rows)" for the table that `tokens` starts with."""
    columns: list[str] = []
    rows = 0
    for index, token in enumerate(tokens):
        if token.type == "table_close":
            break
        if token.type == "th_open":
            columns.append(_inline_text(tokens[index + 1]))
        elif token.type == "tr_open" and tokens[index + 1].type == "td_open":
            rows += 1
    named = ", ".join(c for c in columns if c)
    return f"Table: {named} ({_plural(rows, 'row')})" if named else f"Table ({_plural(rows, 'row')})"


def _heading_text(tokens: Sequence[Token]) -> str:
    """Return the text of the chunk's headings joined with " › ", or ""."""
    headings = [_inline_text(tokens[i + 1]) for i, t in enumerate(tokens) if t.type == "heading_open"]
    return HEADING_SEPARATOR.join(h for h in headings if h)


def embedding_text(title: str, heading_path: list[str], content: str) -> str:
    """Return exactly the text the embedder reads for a chunk, and which is hashed to skip re-embedding.

    The title comes first, then the heading path unless the title already names every heading:
    the model reads only its first 256 tokens, and this way the words that place the chunk are
    always among them. Then the content as plain text: headings and prose without Markdown
    syntax (link text kept, URLs dropped), code verbatim without its fence lines, table rows as
    cells joined by " | " without the separator row. Headings already in the title or path are
    not repeated.
    """
    path = HEADING_SEPARATOR.join(h for h in map(_squash, heading_path) if h)
    header = [title.strip()]
    if any(h.strip() and _squash(h) not in title for h in heading_path):
        header.append(path)
    known = {_squash(h) for h in heading_path} | {_squash(title)}
    body = _plain_blocks(_parse(content), skip_headings=known)
    return "\n".join(line for line in (*header, *body) if line)


def embedded_tokens(markdown: str) -> int:
    """Return about how many model tokens of `markdown` the embedder reads, as `embedding_text` renders it.

    The chunker sizes chunks with this, so a budget means text the model reads, not link URLs or
    Markdown syntax it never sees (a link-heavy page would otherwise get chunks of a few words,
    and the same page served from another host would chunk differently). A pattern instead of
    `embedding_text`'s parse, because the chunker counts every block of every page.
    """
    return count_tokens(_NOT_EMBEDDED.sub(" ", markdown))


def _plain_blocks(tokens: Sequence[Token], skip_headings: Collection[str] = ()) -> list[str]:
    """Return the text of each block: inline text for headings, paragraphs and table rows, raw code."""
    blocks = []
    row: list[str] = []
    for index, token in enumerate(tokens):
        if token.type in ("fence", "code_block", "html_block"):
            blocks.append(token.content.strip("\n"))
        elif token.type in ("th_open", "td_open"):
            row.append(_inline_text(tokens[index + 1]))
        elif token.type == "tr_close":
            blocks.append(" | ".join(row))
            row = []
        elif token.type == "paragraph_open" or (
            token.type == "heading_open" and _inline_text(tokens[index + 1]) not in skip_headings
        ):
            blocks.append(_inline_text(tokens[index + 1]))
    return [block for block in blocks if block]


def _inline_text(token: Token) -> str:
    """Return the visible text of an inline token: link text without URL, code without backticks."""
    words = []
    for child in token.children or []:
        if child.type in ("text", "code_inline"):
            words.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            words.append(" ")
    return _squash("".join(words))


# The pipeline asks for a chunk's summary and then its embedding text; a small cache parses it once.
@lru_cache(maxsize=256)
def _parse(content: str) -> tuple[Token, ...]:
    """Return the Markdown tokens of a chunk."""
    return tuple(_PARSER.parse(content))


def _squash(text: str) -> str:
    """Return `text` with runs of whitespace collapsed to single spaces, trimmed."""
    return " ".join(text.split())


def _plural(count: int, noun: str) -> str:
    """Return "1 line", "2 lines"."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"

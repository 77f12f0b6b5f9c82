"""HTML → Markdown with html-to-markdown (Rust core), then whitespace normalised.

The converter was chosen by measurement against markdownify and html2text
(bench/extract.py): it is the fastest of the three and the only one that
lengthens a fence around code containing backticks and escapes pipes inside
table cells. It gets HTML already prepared by the other extract steps
(plain code blocks, headings with `{#id}`, absolute links), so its options only
turn off what would add noise.
"""

from __future__ import annotations

import re

from html_to_markdown import ConversionOptions, convert

_OPTIONS = ConversionOptions(
    heading_style="atx",
    bullets="-",
    strong_em_symbol="*",
    code_block_style="backticks",
    escape_asterisks=False,
    escape_underscores=False,
    escape_misc=False,
    # A <br> becomes "\" + newline: a trailing double space would break "no trailing spaces".
    newline_style="backslash",
    # Inactive tabs (Docusaurus `hidden` tab panels) hold real content, e.g. the yarn variant.
    hidden_content="reachable",
    # Sphinx signatures carry <abbr title="Keyword-only parameters separator (PEP 3102)">*</abbr>.
    expand_abbreviations=False,
    include_blockquote_citations=False,
    extract_metadata=False,
    autolinks=False,
)

_FENCE_OPEN = re.compile(r"^ *(`{3,}|~{3,})")
_FENCE_CLOSE = re.compile(r"^ *(`{3,}|~{3,}) *$")
_QUOTE = re.compile(r"^ {0,3}>")
# The ">" markers in front of a line inside blockquotes, nested or not.
_QUOTE_MARKERS = re.compile(r"^(?: {0,3}> ?)+")
_HEADING = re.compile(r"^#{1,6} ")


def html_to_markdown(html: str) -> str:
    """Return the Markdown for an HTML fragment, whitespace normalised."""
    return normalize_markdown(convert(html, _OPTIONS).content or "")


def normalize_markdown(text: str) -> str:
    """Return `text` with `\\n` line endings, no trailing spaces, at most one blank line in a row,
    a blank line around headings, code fences and blockquotes, and exactly one final newline
    ("" when there is no text). The inside of fenced code is kept byte for byte.
    """
    out: list[str] = []
    fence: str | None = None
    previous = "blank"
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if fence is not None:
            closing = _FENCE_CLOSE.match(_QUOTE_MARKERS.sub("", line))
            if closing and closing.group(1)[0] == fence[0] and len(closing.group(1)) >= len(fence):
                fence, line = None, line.rstrip()
                previous = "quote" if _QUOTE.match(line) else "fence"
            out.append(line)
            continue
        line = line.rstrip()
        kind = _block_kind(line)
        if kind == "blank":
            if out and out[-1]:
                out.append("")
        else:
            if out and out[-1] and _needs_blank_line(previous, kind):
                out.append("")
            out.append(line)
            opening = _FENCE_OPEN.match(_QUOTE_MARKERS.sub("", line))
            if opening:
                fence = opening.group(1)
        previous = kind
    joined = "\n".join(out).strip("\n")
    return joined + "\n" if joined.strip() else ""


def _block_kind(line: str) -> str:
    """Return what a Markdown line starts: "blank", "fence", "heading", "quote" or "text"."""
    if not line:
        return "blank"
    if _FENCE_OPEN.match(line):
        return "fence"
    if _HEADING.match(line):
        return "heading"
    return "quote" if _QUOTE.match(line) else "text"


def _needs_blank_line(previous: str, kind: str) -> bool:
    """Return whether a blank line must separate two adjacent lines of these kinds.

    Without it a paragraph after a blockquote is swallowed by the quote (lazy
    continuation), and headings or fences glued to text read as one block.
    """
    if "fence" in (previous, kind) or "heading" in (previous, kind):
        return True
    return previous != kind and "quote" in (previous, kind)

"""Stored Markdown → safe HTML for the web UI: highlighted code, kept heading anchors, one sanitiser.

Everything on a shelf was written by whoever runs the crawled site, so it is
untrusted. Markdown is rendered with raw HTML off: the extractor turns a page's
markup into Markdown, so an HTML tag left in stored Markdown was text on the
page (`<tablename>`, `postgresql://<user>@<host>`, a `<script>` the docs talk
about) and is shown as text, not dropped. Every result then goes through
`sanitize` as well, an allowlist: no scripts, no event-handler attributes, no
`javascript:` URLs, `rel="noopener noreferrer"` on links, and classes only
from the short lists our own CSS knows. Nothing else in the UI turns shelf
text into markup.

Search snippets are plain text: `snippet` strips the Markdown, cuts a window
around the query terms and wraps them in `<mark>`, escaping the rest.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import nh3
from markdown_it import MarkdownIt
from markdown_it.rules_core import StateCore
from markdown_it.token import Token
from markupsafe import Markup, escape
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name
from pygments.token import STANDARD_TYPES
from pygments.util import ClassNotFound

# The attribute list the extractor writes after a heading (`## Heading {#anchor}`) and the
# chunker reads back (chunk.py): here it becomes the heading's id, so `url#anchor` citations land.
_HEADING_ATTRS = re.compile(r"[ \t]*\{#([^\s}]+)[^}\n]*\}[ \t]*$")
# A citation marker of the passages answer ("**[3]**") or of a model's answer ("[3]").
_CITATION_MARK = re.compile(r"\[(\d{1,3})\]")
_ALIGN_STYLE = re.compile(r"text-align:\s*(left|center|right)")

_HIGHLIGHT_LIGHT = "friendly"
_HIGHLIGHT_DARK = "github-dark"

_ALLOWED_TAGS = frozenset({
    "a", "abbr", "b", "blockquote", "br", "caption", "code", "dd", "del", "details", "div", "dl", "dt",
    "em", "figcaption", "figure", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "kbd",
    "li", "mark", "ol", "p", "pre", "q", "s", "samp", "small", "span", "strong", "sub", "summary", "sup",
    "table", "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul", "var",
})
_HEADINGS = ("h1", "h2", "h3", "h4", "h5", "h6")
_ALLOWED_ATTRIBUTES: dict[str, set[str]] = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "abbr": {"title"},
    "ol": {"start"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan", "scope"},
    **{h: {"id"} for h in _HEADINGS},
}
_ALIGN_CLASSES = {"align-left", "align-center", "align-right"}
# Crawled HTML may only use the classes our stylesheet gives meaning to in rendered content:
# Pygments token classes, the highlight block, table alignment and citation references.
_ALLOWED_CLASSES: dict[str, set[str]] = {
    "pre": {"highlight"},
    "span": {c for c in STANDARD_TYPES.values() if c},
    "th": _ALIGN_CLASSES,
    "td": _ALIGN_CLASSES,
    "a": {"cite-ref"},
    "sup": {"cite"},
}
_URL_SCHEMES = frozenset({"http", "https", "mailto"})


def sanitize(html: str) -> str:
    """Return `html` with everything but the allowlisted tags, attributes, classes and URL schemes removed."""
    return nh3.clean(html, tags=set(_ALLOWED_TAGS), attributes=_ALLOWED_ATTRIBUTES,
                     allowed_classes=_ALLOWED_CLASSES, url_schemes=set(_URL_SCHEMES),
                     link_rel="noopener noreferrer")


def highlight_code(code: str, lang: str, _attrs: str) -> str:
    """Return a fenced block highlighted by Pygments, or "" (plain escaped code) for unknown languages."""
    try:
        lexer = get_lexer_by_name(lang) if lang else None
    except ClassNotFound:
        lexer = None
    if lexer is None:
        return ""
    spans = highlight(code, lexer, HtmlFormatter(nowrap=True))
    # Starting with <pre tells markdown-it to use this as the whole block.
    return f'<pre class="highlight"><code>{spans}</code></pre>'


def highlight_css() -> str:
    """Return the stylesheet for highlighted code: a light theme, and a dark one for dark colour schemes."""
    light, dark = (_style_rules(HtmlFormatter(style=name)) for name in (_HIGHLIGHT_LIGHT, _HIGHLIGHT_DARK))
    return f"{light}\n@media (prefers-color-scheme: dark) {{\n{dark}\n}}\n"


def _style_rules(formatter: HtmlFormatter) -> str:
    """Return a Pygments style's rules for `.highlight` blocks: background and token colours only."""
    rules = formatter.get_background_style_defs(".highlight") + formatter.get_token_style_defs(".highlight")
    return "\n".join(rules)


def _heading_anchors(state: StateCore) -> None:
    """Move a heading's trailing `{#id}` into the heading's id attribute (runs before inline parsing)."""
    tokens = state.tokens
    for i, token in enumerate(tokens[:-1]):
        if token.type != "heading_open" or tokens[i + 1].type != "inline":
            continue
        inline = tokens[i + 1]
        match = _HEADING_ATTRS.search(inline.content)
        if match:
            token.attrSet("id", match.group(1))
            inline.content = inline.content[: match.start()]


def _table_alignment(state: StateCore) -> None:
    """Turn markdown-it's `style="text-align:…"` on table cells into classes (the UI allows no style)."""
    for token in state.tokens:
        style = token.attrGet("style") if token.type in ("th_open", "td_open") else None
        if isinstance(style, str):
            token.attrs.pop("style")
            match = _ALIGN_STYLE.search(style)
            if match:
                token.attrSet("class", f"align-{match.group(1)}")


def _citation_links(state: StateCore) -> None:
    """Number an answer's citations in its text (`env["citations"]` holds their URLs, in order).

    The passages answer writes `**[n]**` markers: each becomes a link to citation n. A model writes
    Markdown links to the URLs it cites: each such link is followed by a superscript `[n]`. Only text
    and link tokens are touched, so `[1]` inside code stays as written.
    """
    urls: list[str] = state.env.get("citations", [])
    if not urls:
        return
    numbers: dict[str, int] = {}
    for number, url in enumerate(urls, 1):
        numbers.setdefault(state.md.normalizeLink(url), number)
    for block in state.tokens:
        if block.type == "inline" and block.children:
            block.children = _numbered(block.children, numbers, len(urls))


def _numbered(children: list[Token], numbers: dict[str, int], count: int) -> list[Token]:
    """Return inline tokens with citation markers linked and cited links followed by their number."""
    out: list[Token] = []
    cited: int | None = None
    for token in children:
        out += _split_markers(token, count)
        if token.type == "link_open" and token.markup != "autolink":
            cited = numbers.get(str(token.attrGet("href")))
        elif token.type == "link_close" and cited is not None:
            out += [Token("html_inline", "", 0, content='<sup class="cite">'), *_citation_ref(cited),
                    Token("html_inline", "", 0, content="</sup>")]
            cited = None
    return out


def _citation_ref(number: int) -> list[Token]:
    """Return the tokens of a `[n]` link to citation n."""
    return [Token("link_open", "a", 1, attrs={"href": f"#cite-{number}", "class": "cite-ref"}),
            Token("text", "", 0, content=f"[{number}]"), Token("link_close", "a", -1)]


def _split_markers(token: Token, count: int) -> list[Token]:
    """Return `token` split into text and citation-link tokens (unchanged when it holds no marker)."""
    if token.type != "text" or not _CITATION_MARK.search(token.content):
        return [token]
    out: list[Token] = []
    last = 0
    for match in _CITATION_MARK.finditer(token.content):
        number = int(match.group(1))
        if 1 <= number <= count:
            out += [Token("text", "", 0, content=token.content[last: match.start()]), *_citation_ref(number)]
            last = match.end()
    out.append(Token("text", "", 0, content=token.content[last:]))
    return [t for t in out if t.type != "text" or t.content]


def _markdown() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "highlight": highlight_code})
    md.enable(["table", "strikethrough"])
    md.core.ruler.before("inline", "heading_anchors", _heading_anchors)
    md.core.ruler.after("inline", "table_alignment", _table_alignment)
    md.core.ruler.after("table_alignment", "citation_links", _citation_links)
    return md


_MD = _markdown()


def render_markdown(text: str) -> Markup:
    """Return stored Markdown as sanitised HTML, safe to put in a page."""
    return Markup(sanitize(_MD.render(text)))


def render_answer(text: str, citation_urls: Sequence[str]) -> Markup:
    """Return an answer's Markdown as sanitised HTML with its citations numbered and linked to `#cite-n`."""
    return Markup(sanitize(_MD.render(text, {"citations": list(citation_urls)})))


# -- search snippets ----------------------------------------------------------------------------------

_STOP_WORDS = frozenset(
    ["a", "an", "and", "are", "as", "at", "be", "by", "can", "do", "does", "for", "from", "how", "i", "in", "is", "it", "my", "of", "on", "or", "the", "to", "what", "when", "where", "which", "why", "with"])
_MARKDOWN_NOISE = [
    (re.compile(r"^[ \t]*(```|~~~).*$", re.MULTILINE), " "),    # fence lines
    (re.compile(r"\{#[^}\n]*\}"), ""),                        # heading anchors
    (re.compile(r"!?\[([^\]\n]*)\]\([^)\n]*\)"), r"\1"),      # links and images keep their text
    (re.compile(r"<(https?://[^>\s]+)>"), r"\1"),             # autolinks
    (re.compile(r"^[ \t]*(#{1,6}|>|[-*+]|\d+\.)[ \t]+", re.MULTILINE), ""),  # block markers
    (re.compile(r"(\*\*|__|`+|\|)"), " "),                    # emphasis, code ticks, table pipes
    (re.compile(r"(?<!\w):?[-=]{3,}:?"), " "),                  # table separator rows, rules
]


def query_terms(query: str) -> list[str]:
    """Return the words of a query worth marking in a snippet, longest first, without stop words."""
    words = {w.lower() for w in re.findall(r"\w+", query) if len(w) > 1 and w.lower() not in _STOP_WORDS}
    return sorted(words, key=lambda w: (-len(w), w))


def plain_text(markdown: str) -> str:
    """Return Markdown as one line of readable text (markup dropped, whitespace collapsed)."""
    for pattern, replacement in _MARKDOWN_NOISE:
        markdown = pattern.sub(replacement, markdown)
    return " ".join(markdown.split())


def snippet(markdown: str, query: str, width: int = 260) -> Markup:
    """Return about `width` characters of a chunk around its densest cluster of query terms, in <mark>."""
    text = plain_text(markdown)
    terms = query_terms(query)
    pattern = re.compile(r"(?<!\w)(" + "|".join(map(re.escape, terms)) + ")", re.IGNORECASE) if terms else None
    start = _window_start(text, pattern, width) if pattern else 0
    window = text[start: start + width]
    if start + width < len(text):
        window = window[: window.rfind(" ")] if " " in window else window
    head = "… " if start else ""
    tail = " …" if start + len(window) < len(text) else ""
    return Markup(head) + _mark(window, pattern) + Markup(tail)


def _window_start(text: str, pattern: re.Pattern[str], width: int) -> int:
    """Return where the snippet starts: a little before the match whose window has the most distinct terms."""
    best, best_terms = 0, 0
    for match in pattern.finditer(text):
        found = {m.group(0).lower() for m in pattern.finditer(text, match.start(), match.start() + width)}
        if len(found) > best_terms:
            best, best_terms = match.start(), len(found)
    if best < width // 4:
        return 0
    start = text.rfind(" ", 0, best - width // 5)
    return start + 1 if start >= 0 else 0


def _mark(text: str, pattern: re.Pattern[str] | None) -> Markup:
    """Return `text` escaped, with every match of `pattern` wrapped in <mark>."""
    if pattern is None:
        return escape(text)
    parts: list[Markup] = []
    last = 0
    for match in pattern.finditer(text):
        parts += [escape(text[last: match.start()]), Markup("<mark>%s</mark>") % match.group(0)]
        last = match.end()
    parts.append(escape(text[last:]))
    return Markup("").join(parts)

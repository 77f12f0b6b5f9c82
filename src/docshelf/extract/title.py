"""Page titles: the main content's <h1>, else <title> without the site's suffix, else a file name."""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from urllib.parse import unquote, urlsplit

from selectolax.lexbor import LexborHTMLParser, LexborNode

from docshelf.extract.dom import clean_text

# "API — Flask Documentation (3.1.x)", "Commands - widgetctl", "Components | Widgets UI".
_SITE_SUFFIX = re.compile(r"\s+(?:—|–|\||·|::|-)\s+[^—–|·]*$")
_ATTR_LIST = re.compile(r"\s*\{#[^}]*\}\s*$")
_ATX_H1 = re.compile(r"^# +(.+?)(?: +#+)? *$")


def html_title(tree: LexborHTMLParser, main: LexborNode) -> str:
    """Return the text of the main content's <h1>, else the <title> without its site suffix, else "".

    When the content has several <h1>s they are section headings (SQLite numbers
    them "1. Overview", "2. …"), so <title> names the page better; the first
    <h1> is used only when there is no <title>.
    """
    headings = [text for text in map(clean_text, main.css("h1")) if text]
    title_tag = tree.css_first("title")
    title = strip_site_suffix(clean_text(title_tag)) if title_tag is not None else ""
    if len(headings) == 1 or (headings and not title):
        return headings[0]
    return title


def strip_site_suffix(title: str) -> str:
    """Return a <title> without the trailing " — Site name" part, when something remains before it."""
    stripped = _SITE_SUFFIX.sub("", title).strip()
    return stripped or title


def markdown_title(markdown: str) -> str | None:
    """Return the text of the first `# ` heading of a Markdown document, without an `{#id}`."""
    for line in markdown.split("\n"):
        match = _ATX_H1.match(line)
        if match:
            return _ATTR_LIST.sub("", match.group(1)).strip() or None
    return None


def text_title(text: str) -> str | None:
    """Return the first non-blank line of a plain-text document."""
    return next((line.strip() for line in text.split("\n") if line.strip()), None)


def url_name(url: str) -> str:
    """Return the last path segment of `url` (the file name), or its host when the path is empty."""
    parts = urlsplit(url)
    name = PurePosixPath(unquote(parts.path)).name
    return name or parts.netloc or url

"""extract_html and extract_document: titles, pass-through, and pages with nothing to keep."""

from __future__ import annotations

from pathlib import Path

import pytest

from docshelf.errors import ExtractError
from docshelf.extract import Extracted, extract_document, extract_html

URL = "https://docs.example.org/guide/intro.html"


@pytest.mark.parametrize(
    "html",
    [
        "",
        "<html><head><title>Empty</title></head><body></body></html>",
        "<html><body>   \n  </body></html>",
        "<html><body><script>var x = 1;</script><style>p {}</style></body></html>",
    ],
)
def test_empty_page_raises(html: str) -> None:
    with pytest.raises(ExtractError) as raised:
        extract_html(html, URL)
    assert raised.value.url == URL
    assert raised.value.reason == "no main content"


def test_page_of_only_navigation_raises() -> None:
    html = """<html><head><title>Site</title></head><body>
      <header><a href="/">Home</a> <form role="search"><input name="q"></form></header>
      <nav><ul><li><a href="a.html">Alpha</a></li><li><a href="b.html">Beta</a></li></ul></nav>
      <div class="sidebar"><a href="c.html">Gamma</a></div>
      <footer>© 2024 Example</footer></body></html>"""
    with pytest.raises(ExtractError, match="no main content"):
        extract_html(html, URL)


def test_page_of_bare_links_raises() -> None:
    html = "<html><body><ul><li><a href='a.html'>Alpha page</a></li><li><a href='b.html'>Beta page</a></li></ul></body></html>"
    with pytest.raises(ExtractError):
        extract_html(html, URL)


@pytest.mark.parametrize(
    ("head_title", "body", "expected"),
    [
        ("API — Flask Documentation (3.1.x)", "<p>text</p>", "API"),
        ("Components | Widgets UI", "<p>text</p>", "Components"),
        ("Commands - widgetctl", "<p>text</p>", "Commands"),
        ("SELECT", "<p>text</p>", "SELECT"),
        ("Ignored — Site", "<h1>The h1 wins</h1><p>text</p>", "The h1 wins"),
        ("Page — Site", "<h1>1. Overview</h1><p>a</p><h1>2. Details</h1><p>b</p>", "Page"),
        ("", "<p>text</p>", ""),
    ],
)
def test_html_title(head_title: str, body: str, expected: str) -> None:
    html = f"<html><head><title>{head_title}</title></head><body><main>{body}</main></body></html>"
    assert extract_html(html, URL).title == expected


def test_markdown_passes_through_with_normalised_newlines() -> None:
    text = "Intro line\r\n\r\n# Getting started {#start}\r\n\r\nUse `exist_ok=True`.\r\n\r\n\r\n"
    assert extract_document(text, "markdown", "file:///docs/start.md") == Extracted(
        title="Getting started",
        markdown="Intro line\n\n# Getting started {#start}\n\nUse `exist_ok=True`.\n",
    )


def test_markdown_without_h1_is_titled_by_its_file_name() -> None:
    assert extract_document("## Only h2\n", "markdown", "https://x.org/docs/README.md").title == "README.md"


def test_text_is_titled_by_its_first_line() -> None:
    extracted = extract_document("\n  Release notes\nline two\r\n", "text", "https://x.org/NEWS.txt")
    assert extracted == Extracted(title="Release notes", markdown="  Release notes\nline two\n")


def test_html_kind_is_converted() -> None:
    extracted = extract_document("<main><h1>Hi</h1><p>there</p></main>", "html", URL)
    assert extracted == Extracted(title="Hi", markdown="# Hi\n\nthere\n")


def test_empty_markdown_raises() -> None:
    with pytest.raises(ExtractError):
        extract_document("\n\n", "markdown", "https://x.org/empty.md")


def test_unknown_kind_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="docx"):
        extract_document("x", "docx", URL)


def test_headings_whose_text_is_their_permalink_are_kept() -> None:
    # Debian's Django REST framework docs: MkDocs with `toc_link`, every heading's text is `a.toclink`.
    page = Path(__file__).resolve().parent.parent / "fixtures" / "pages" / "mkdocs_toclink.html"
    extracted = extract_html(page.read_text(encoding="utf-8"), "http://127.0.0.1:8000/api-guide/throttling/")
    headings = [line for line in extracted.markdown.splitlines() if line.startswith("#")]
    assert headings[:3] == [
        "# Throttling {#throttling}",
        "## How throttling is determined {#how-throttling-is-determined}",
        "## Setting the throttling policy {#setting-the-throttling-policy}",
    ]
    assert "## AnonRateThrottle {#anonratethrottle}" in headings
    assert len(headings) == 12


def test_permalink_marks_beside_heading_text_still_go() -> None:
    html = ('<main><h2 id="setup">Setup<a class="headerlink" href="#setup">¶</a></h2>'
            '<h2 id="run"><a class="anchor" href="#run">#</a>Run</h2><p>Start the widget server first.</p>'
            '<h2 id="stop">Stop<a class="headerlink" href="#stop">Link to this heading</a></h2><p>Stop it.</p></main>')
    headings = [line for line in extract_html(html, URL).markdown.splitlines() if line.startswith("#")]
    assert headings == ["## Setup {#setup}", "## Run {#run}", "## Stop {#stop}"]


def test_contents_backlinks_in_headings_keep_their_text() -> None:
    # Sphinx `.. contents:: :backlinks: entry` (celery's changelogs): the version is a link back to the contents.
    html = ('<main><h1>Change history</h1><p>Changes of each release.</p>'
            '<h2><a class="toc-backref" href="#id19" role="doc-backlink">2.2.8</a>'
            '<a class="headerlink" href="#version-2-2-8">¶</a></h2><p>Fixed the widget cache.</p></main>')
    headings = [line for line in extract_html(html, URL).markdown.splitlines() if line.startswith("#")]
    assert headings == ["# Change history", "## 2.2.8 {#version-2-2-8}"]

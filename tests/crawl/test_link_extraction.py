"""Link extraction from HTML and Markdown."""

from __future__ import annotations

from docshelf.crawl.links import html_links, markdown_links

PAGE = "https://docs.example.com/guide/start.html"


def test_html_links_are_resolved_normalised_and_filtered():
    html = """
    <a href="next.html#part">next</a> <a href="next.html">again</a> <a href="/guide/">index</a>
    <a href="sub/index.html">sub</a> <a href="mailto:a@b.c">mail</a> <a href="javascript:go()">js</a>
    <a href="tel:123">tel</a> <a href="#top">top</a> <a href="shot.png">image</a> <a href="">empty</a>
    <a>no href</a> <a href="http://[broken">broken</a> <a href="HTTPS://Other.Example.com:443/x">other host</a>
    """
    assert html_links(html, PAGE).links == [
        "https://docs.example.com/guide/next.html",
        "https://docs.example.com/guide/",
        "https://docs.example.com/guide/sub/",
        "https://docs.example.com/guide/start.html",
        "https://other.example.com/x",
    ]


def test_base_href_and_canonical():
    html = """<html><head><base href="/api/v2/"><link rel="Canonical" href="start.html"></head>
    <body><a href="ref.html">ref</a></body></html>"""
    found = html_links(html, PAGE)
    assert found.links == ["https://docs.example.com/api/v2/ref.html"]
    assert found.canonical == "https://docs.example.com/api/v2/start.html"


def test_relative_href_embedding_an_absolute_url_is_ignored():
    # Debian's build of the Django REST framework docs writes its site URL as a relative path.
    html = """<link rel="canonical" href="../../https://docs.example.org/guide/start/">
    <a href="../https://docs.example.org/guide/next/">next</a> <a href="next.html">next</a>"""
    found = html_links(html, PAGE)
    assert found.canonical is None
    assert found.links == ["https://docs.example.com/guide/next.html"]


def test_nofollow_links_are_not_taken():
    html = """<a href="tasks.html">Tasks</a>
    <div role="note"><a href="_sources/start.rst.txt" rel="nofollow">Show Source</a></div>
    <a href="login.html" rel="NoFollow noopener">Log in</a>"""
    assert html_links(html, PAGE).links == ["https://docs.example.com/guide/tasks.html"]


def test_no_canonical():
    assert html_links('<link rel="stylesheet" href="s.css"><p>x</p>', PAGE).canonical is None


def test_markdown_links():
    text = """# Title
- [Intro](intro.md): start here
- [API](<api reference.md> "The API")
- ![diagram](diagram.png) and ![logo](logo.md)
- [Site](https://example.com/docs/#x) [mail](mailto:a@b.c)
"""
    assert markdown_links(text, "https://docs.example.com/llms.txt") == [
        "https://docs.example.com/intro.md",
        "https://docs.example.com/api%20reference.md",
        "https://example.com/docs/",
    ]

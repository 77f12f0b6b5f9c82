"""Sitemap, llms.txt and llms-full.txt parsing; Markdown alternates."""

from __future__ import annotations

import gzip

import pytest

from docshelf.crawl.discover import parse_llms_txt, parse_sitemap
from servers import Reply

NS = 'xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"'


def test_urlset_with_namespace_whitespace_and_duplicates():
    body = f"""<?xml version="1.0"?><urlset {NS}>
      <url><loc>
        https://h/docs/a
      </loc></url>
      <url><loc>https://h/docs/a</loc></url>
      <url><loc>https://h/docs/b/index.html</loc><lastmod>2025-01-01</lastmod></url>
      <url><loc>not a url</loc></url>
    </urlset>""".encode()
    sitemap = parse_sitemap(body)
    assert sitemap.pages == ["https://h/docs/a", "https://h/docs/b/"]
    assert sitemap.sitemaps == []


def test_sitemap_index_without_namespace():
    body = b"<sitemapindex><sitemap><loc>https://h/s1.xml</loc></sitemap><sitemap><loc>https://h/s2.xml.gz</loc></sitemap></sitemapindex>"
    sitemap = parse_sitemap(body)
    assert sitemap.sitemaps == ["https://h/s1.xml", "https://h/s2.xml.gz"]
    assert sitemap.pages == []


def test_gzipped_sitemap():
    body = gzip.compress(f"<urlset {NS}><url><loc>https://h/x</loc></url></urlset>".encode())
    assert parse_sitemap(body).pages == ["https://h/x"]


def test_other_namespace_prefix():
    body = b'<s:urlset xmlns:s="http://www.sitemaps.org/schemas/sitemap/0.9"><s:url><s:loc>https://h/p</s:loc></s:url></s:urlset>'
    assert parse_sitemap(body).pages == ["https://h/p"]


@pytest.mark.parametrize(
    ("body", "pages"),
    [
        (b"", []),
        (b"<html><body>Not found</body></html>", []),
        (b"\x1f\x8bnot gzip", []),
        (b"<urlset><url><loc>https://h/a", ["https://h/a"]),  # cut off: recover mode keeps the entry it read whole
        (b"<urlset><url><loc>https://h/a</loc></url><url><loc>", ["https://h/a"]),
    ],
)
def test_garbage_lists_nothing_it_cannot_read(body: bytes, pages: list[str]) -> None:
    sitemap = parse_sitemap(body)
    assert sitemap.sitemaps == []
    assert sitemap.pages == pages


def test_entities_are_not_expanded():
    external = b"""<?xml version="1.0"?><!DOCTYPE u [<!ENTITY e SYSTEM "file:///etc/passwd">]>
    <urlset><url><loc>https://h/&e;</loc></url></urlset>"""
    assert parse_sitemap(external).pages == ["https://h/"]  # the entry stays, the file's text never enters it
    internal = b"""<?xml version="1.0"?><!DOCTYPE u [<!ENTITY x "expanded">]>
    <urlset><url><loc>https://h/&x;/page</loc></url></urlset>"""
    assert parse_sitemap(internal).pages == ["https://h/"]  # up to the reference: "expanded" is never read in


def test_llms_txt():
    text = """# Project
> Summary with a [link](https://h/docs/summary.md).

## Docs
- [Guide](guide.md): the guide
- [API](https://h/docs/api.md)
"""
    assert parse_llms_txt(text, "https://h/docs/llms.txt") == [
        "https://h/docs/summary.md",
        "https://h/docs/guide.md",
        "https://h/docs/api.md",
    ]


LLMS_FULL = """# Installing
Source: {base}/docs/install

Install widgetry with pip.

```bash
# not a title: a shell comment
pip install widgetry
```

# Configuring
Source: {base}/docs/config

The frobnicator reads widgetry.toml.

# Changelog

No source line: this stays on the llms-full.txt page.
"""


def test_prefer_llms_full_reads_pages_from_it(server, fast, crawl_all):
    from dataclasses import replace

    server.route("/docs/", Reply.html("<main><h1>Docs</h1><p>Start.</p><a href='other'>x</a></main>"))
    server.route("/docs/llms-full.txt", Reply(body=LLMS_FULL.format(base=server.base),
                                              headers={"Content-Type": "text/plain"}))
    outcomes, run = crawl_all(server.url("/docs/"), replace(fast, prefer_llms_full=True))
    assert run.discovered_by == "llms-full.txt" and run.complete
    pages = {o.url: o.fetched.text for o in outcomes if o.fetched}
    assert list(pages) == [server.url("/docs/"), server.url("/docs/install"), server.url("/docs/config"),
                           server.url("/docs/llms-full.txt")]
    assert "# not a title: a shell comment" in pages[server.url("/docs/install")]
    assert "Source:" not in pages[server.url("/docs/config")]
    assert "/docs/other" not in server.paths()  # no page fetched besides the start and the file


def test_markdown_alternates_are_read_when_preferred(server, fast, crawl_all):
    from dataclasses import replace

    server.route("/docs/", Reply.html('<html><head><link rel="alternate" type="text/markdown" href="index.md">'
                                      "</head><body><main><h1>Docs</h1><p>HTML text.</p></main></body></html>"))
    server.route("/docs/index.md", Reply(body="# Docs\n\nMarkdown text.\n", headers={"Content-Type": "text/markdown"}))
    [plain], _ = crawl_all(server.url("/docs/"), fast)
    [twin], _ = crawl_all(server.url("/docs/"), replace(fast, prefer_markdown=True))
    assert plain.fetched.kind == "html"
    assert (twin.url, twin.fetched.kind, twin.fetched.text) == (server.url("/docs/"), "markdown",
                                                                 "# Docs\n\nMarkdown text.\n")

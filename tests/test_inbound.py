"""Inbound link text: which links count, what text they carry, and which chunk they name."""

from __future__ import annotations

import pytest

from docshelf.inbound import ChunkAnchors, LinkTarget, chunk_for, chunk_texts, collect_link_texts, heading_lines, page_links

BASE = "https://docs.example.com/"

# A Sphinx genindex as the extractor writes it: nested entries under a bare term or a qualified one.
GENINDEX = f"""# Index {{#index}}

[**A**]({BASE}genindex.html#A) | [**C**]({BASE}genindex.html#C)

## C {{#C}}

- caching
  - [HTTP]({BASE}guide/http.html#conditional-requests)
- [close() (Session method)]({BASE}api.html#Session.close)
  - [(Response method)]({BASE}api.html#Response.close)
- module
  - [widgets]({BASE}api.html#module-widgets)
- [state (Task attribute)]({BASE}api.html#Task.state)
  - [(widgets.state.Tile attribute)]({BASE}api.html#widgets.state.Tile.state)
"""

GUIDE = f"""# HTTP {{#http}}

Widgets speaks HTTP/1.1. See [the API]({BASE}api.html) and [¶]({BASE}guide/http.html#http).

## Conditional requests {{#conditional-requests}}

Send `If-None-Match` with the stored ETag; a 304 answer means the stored body is still good.

### ETags {{#etags}}

An ETag names one version of a resource. [Next]({BASE}api.html) [[source]]({BASE}_modules/widgets.html)
[https://docs.example.com/api.html]({BASE}api.html) ![diagram]({BASE}img/flow.png)
[Python docs](https://docs.python.org/3/library/http.html#module-http)

```python
# [not a link](https://docs.example.com/api.html)
```
"""

API = f"""# API {{#api}}

## Session {{#Session}}

#### Session.close() {{#Session.close}}

Close the session. Read the [HTTP guide]({BASE}guide/http.html).
"""

PAGES = {f"{BASE}genindex.html": GENINDEX, f"{BASE}guide/http.html": GUIDE, f"{BASE}api.html": API}


def test_page_links_keep_keyword_links_to_other_pages() -> None:
    links = list(page_links(GUIDE, f"{BASE}guide/http.html"))
    assert links == [
        (LinkTarget(f"{BASE}api.html", None), "the API"),
        (LinkTarget("https://docs.python.org/3/library/http.html", "module-http"), "Python docs"),
    ]


def test_index_entries_take_their_parent_term() -> None:
    links = dict((text, target) for target, text in page_links(GENINDEX, f"{BASE}genindex.html"))
    assert list(links) == ["caching HTTP", "close() (Session method)", "close() (Response method)", "module widgets",
                           "state (Task attribute)", "state (widgets.state.Tile attribute)"]
    assert links["caching HTTP"] == LinkTarget(f"{BASE}guide/http.html", "conditional-requests")


@pytest.mark.parametrize("markdown", [
    "[¶](https://x.test/a.html#top)", "[#](https://x.test/a.html)", "[[source]](https://x.test/a.html)",
    "[https://x.test/a.html](https://x.test/a.html)", "[Next »](https://x.test/a.html)", "[A](https://x.test/a.html)",
    "![logo](https://x.test/a.png)", "[the](https://x.test/a.html)", "[mail us](mailto:a@x.test)",
])
def test_links_that_say_nothing_about_their_target_are_dropped(markdown: str) -> None:
    assert list(page_links(markdown, "https://x.test/b.html")) == []


def test_link_text_loses_markup_and_images() -> None:
    markdown = "[**`Session.get()`** ![icon](https://x.test/i.png) reference](https://x.test/a.html#get)"
    assert list(page_links(markdown, "https://x.test/b.html")) == [
        (LinkTarget("https://x.test/a.html", "get"), "Session.get() reference")]


def test_collect_keeps_links_between_the_pages_deduplicated_most_common_first() -> None:
    pages = {
        "https://x.test/a.html": "[caching](https://x.test/c.html#s) [Cache](https://x.test/c.html#s)",
        "https://x.test/b.html": "[cache](https://x.test/c.html#s) [elsewhere](https://y.test/c.html)",
        "https://x.test/c/index.html": "[home](https://x.test/c/)",
        "https://x.test/c.html": "# C {#s}",
    }
    assert collect_link_texts(pages) == {LinkTarget("https://x.test/c.html", "s"): ["Cache", "caching"]}


def test_heading_lines_name_each_anchor() -> None:
    assert heading_lines(API) == {"api": "# API", "Session": "## Session", "Session.close": "#### Session.close()"}


CHUNKS = [
    ChunkAnchors(10, ("api",), "# API\n\nIntro."),
    ChunkAnchors(11, ("Session",), "## Session\n\nA session.\n\n#### Session.close()\n\nClose the session."),
    ChunkAnchors(12, ("Session",), "More about sessions."),
]


@pytest.mark.parametrize(("fragment", "heading", "expected"), [
    ("Session", None, 11),  # the first chunk of the section
    ("Session.close", "#### Session.close()", 11),  # packed into its neighbour: found by its heading line
    ("index-3", None, 10),  # an id inside a paragraph: the page
    (None, None, 10),  # the whole page
])
def test_chunk_for(fragment: str | None, heading: str | None, expected: int) -> None:
    assert chunk_for(CHUNKS, fragment, heading) == expected


SQLITE_PAGE = [
    ChunkAnchors(1, ("alter_table",), "# 1. Overview\n\nALTER TABLE changes a table."),
    ChunkAnchors(2, ("alter_table_rename",), "# 2. ALTER TABLE RENAME\n\nRename a table or a column."),
    ChunkAnchors(3, ("alter_table_add_column",), "# 4. ALTER TABLE **ADD COLUMN**\n\nAdd a column at the end."),
]


@pytest.mark.parametrize(("names", "expected"), [
    (["add column"], 3),  # an anchor beside the heading, not on it: the one heading that names the target
    (["table", "ALTER TABLE ADD COLUMN"], 3),  # a name in several headings says nothing; the next one does
    (["rename col"], 1),  # a whole phrase or nothing: the page
])
def test_chunk_for_finds_a_heading_by_what_links_call_it(names: list[str], expected: int) -> None:
    assert chunk_for(SQLITE_PAGE, "altertabaddcol", None, names) == expected


def test_chunk_for_takes_several_anchors_per_chunk() -> None:
    chunks = [ChunkAnchors(1, ("intro",)), ChunkAnchors(2, ("setup", "install", "verify"))]
    assert chunk_for(chunks, "install") == 2
    assert chunk_for([], "install") is None


def test_chunk_texts_map_links_to_chunks_and_cap_them() -> None:
    chunks = {
        f"{BASE}guide/http.html": [ChunkAnchors(1, ("http",), "# HTTP"),
                                   ChunkAnchors(2, ("conditional-requests",), "## Conditional requests")],
        f"{BASE}api.html": [ChunkAnchors(3, ("api",), "# API"),
                            ChunkAnchors(4, ("Session",), "## Session\n\n#### Session.close()\n\nClose.")],
    }
    assert chunk_texts(PAGES, chunks) == {
        1: "HTTP guide",
        2: "caching HTTP",
        # no heading for #Response.close or #Task.state: the page
        3: "close() (Response method)\nmodule widgets\nstate (Task attribute)\nstate (widgets.state.Tile attribute)"
           "\nthe API",
        4: "close() (Session method)",  # #Session.close is a heading packed into the Session chunk
    }
    capped = chunk_texts(PAGES, chunks, max_chars=35)
    assert capped[3] == "close() (Response method)\nthe API"  # a text that does not fit leaves room for shorter ones

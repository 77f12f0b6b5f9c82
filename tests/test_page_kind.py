"""Pages that mention everything and answer nothing are recognised by their structure alone."""

from __future__ import annotations

import pytest

from docshelf.page_kind import PRIORS, page_prior, profile_page, version_series, version_series_pages

PROSE = (
    "Sessions keep data between requests. The session cookie is signed, so the client can read it but "
    "not change it. Set a secret key before you use sessions, and keep it out of version control.\n\n"
)

CASES = [
    ("content", "# Sessions {#sessions}\n\n" + PROSE * 3 + "```python\nsession['user'] = 'ada'\n```\n"),
    ("content", "# Query planning\n\n## 1.1. Lookup {#a}\n\n" + PROSE + "## 1.2. Sorting\n\n" + PROSE
     + "## 2. Covering indexes\n\n" + PROSE + "## 2.1. Details\n\n" + PROSE + "## 3. Summary\n\n" + PROSE),
    ("navigation", "# Index\n\n" + "".join(f"- [item_{i}](http://x/{i}.html), [page {i}](http://x/p{i})\n" for i in range(40))),
    # a module index as Sphinx renders it: a table of links with padded cells, no list items
    ("navigation", "# Module index\n\n| | | |\n| --- | --- | --- |\n" + "".join(
        f"|      | [`widgets.mod{i}`](http://x/mod{i}.html)                          |   |\n" for i in range(30))),
    # a general index whose entries are definition terms: one link per line, no list markers
    ("navigation", "# Index\n\n## A {#A}\n\n" + "".join(
        f"**[attr_{i} (widgets.Widget attribute)](http://x/api.html#widgets.Widget.attr_{i})**\n\n" for i in range(40))),
    # a guide that links generously is still content
    ("content", "# Deploying\n\n" + "".join(
        f"Run the app behind [a proxy](http://x/proxy.html) on port {i}. " + PROSE for i in range(6))),
    ("code_listing", "# Source code for widgets.api\n\n```python\n" + "def f(x):\n    return x\n" * 200 + "```\n"),
    ("release_notes", "# Changes\n\n" + "".join(f"## Version 2.{i}.0 {{#v2-{i}}}\n\nReleased 2024-01-{i + 10:02d}\n\n- Fix a bug.\n\n" for i in range(8))),
    ("release_notes", "# Release history\n\n" + "".join(f"## 2.{i}.1 (2023-0{i % 9 + 1}-01)\n\n- Improved things.\n\n" for i in range(6))),
    # each version's entries filed under component sub-headings that outnumber the versions
    ("release_notes", "# 1.4 Changelog {#changelog}\n\n" + "".join(
        f"## 1.4.{i} {{#change-1.4.{i}}}\n\nReleased: May 3, 2022\n\n"
        + "".join(f"### {part} {{#change-1.4.{i}-{part}}}\n\n- Fixed an issue.\n\n" for part in ("orm", "engine", "sql"))
        for i in range(6))),
    # community links first, then the release history under a second top heading
    ("release_notes", "# Community updates\n\n## GitHub\n\n" + PROSE + "# Release history\n\n## dev\n\n- Unreleased.\n\n"
     + "".join(f"## 2.2{i}.0 (2022-0{i + 1}-09)\n\n- Improved things.\n\n" for i in range(6))),
    # a "what's new" guide: feature sections in prose, each citing the issue it closed
    ("release_notes", "# What's new in 2.0\n\n" + "".join(
        f"## Improved {word} handling {{#w{i}}}\n\n" + PROSE + f"[#{3000 + i}](https://tracker.example/ticket/{3000 + i})\n\n"
        for i, word in enumerate(("session", "query", "pool", "event", "mapper", "cursor")))),
    ("release_notes", "# What's New In Widgets 3.12\n\n" + "".join(
        f"## {word}\n\n" + PROSE + f"(Contributed by Ada in [gh-{1200 + i}](https://github.example/issues/{1200 + i}).)\n\n"
        for i, word in enumerate(("typing", "asyncio", "sqlite3", "pathlib", "os", "re")))),
    # a guide that points at an issue or two is still content
    ("content", "# Advanced usage\n\n" + "".join(
        f"## Topic {i} {{#t{i}}}\n\n" + PROSE + ("See [#1234](https://tracker.example/1234).\n\n" if i < 2 else "")
        for i in range(10))),
    # a guide whose sub-sections happen to be numbered like versions is still content
    ("content", "# Tutorial\n\n" + "".join(
        f"## Step {i}: build the {word} {{#s{i}}}\n\n" + PROSE + "".join(f"### {i}.{j}. Details\n\n" + PROSE for j in range(1, 4))
        for i, word in enumerate(("model", "view", "form", "test"), 1))),
]


@pytest.mark.parametrize(("kind", "markdown"), CASES)
def test_page_kind(kind: str, markdown: str) -> None:
    assert profile_page(markdown).kind == kind
    assert page_prior(markdown) == PRIORS[kind]  # type: ignore[index]


def test_empty_page_is_content() -> None:
    assert profile_page("").kind == "content"


def test_version_series() -> None:
    titles = {
        "r1": "Widgets Release 3.40.1 On 2022-12-28",
        "r2": "Widgets Release 3.40.0 On 2022-11-16",
        "r3": "Widgets Release 3.9.4 On 2021-09-29",
        "n1": "What's new in Widgets 5.2 (Dawn Chorus)",
        "n2": "What's new in Widgets 5.1 (Sun Harmonics)",
        "n3": "What's new in Widgets 4.0",
        "m1": "Moving from Widgets 3.4 to 3.5",
        "m2": "Moving from Widgets 3.5 to 3.6",
        "t": "Widgets 1.4 / 2.0 Tutorial",
        "g": "Getting started",
        "e": "",
    }
    assert version_series(titles) == {"r1", "r2", "r3", "n1", "n2", "n3"}


def test_version_series_are_per_source() -> None:
    rows = [("a1", "a", "Widgets 1.0"), ("a2", "a", "Widgets 1.1"), ("a3", "a", "Widgets 2.0"),
            ("b1", "b", "Widgets 3.0"), ("b2", "b", "Widgets 3.1"), ("b3", "b", None)]
    assert version_series_pages(rows) == {"a1", "a2", "a3"}

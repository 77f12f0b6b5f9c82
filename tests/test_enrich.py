"""Extractive titles, summaries and embedding text: input → expected."""

from __future__ import annotations

import re

import pytest

from docshelf.enrich import Enricher, ExtractiveEnricher, chunk_summary, chunk_title, embedding_text
from docshelf.models import Section

CONFIG_PATH = ["Configuration Handling", "Builtin Configuration Values", "SESSION_COOKIE_NAME"]

SESSION_CHUNK = """## SESSION_COOKIE_NAME

The name of the session cookie. Can be changed in case you already have a cookie with the same
name. See [the *sessions* docs](https://flask.palletsprojects.com/sessions/ "Sessions") for **more**
about `SESSION_COOKIE_NAME`.

```python title="app.py"
app.config["SESSION_COOKIE_NAME"] = "session"
```

| name | default |
|------|---------|
| SESSION_COOKIE_NAME | `"session"` |
"""


@pytest.mark.parametrize(
    ("page_title", "heading_path", "expected"),
    [
        pytest.param(
            "Configuration Handling",
            CONFIG_PATH,
            "Configuration Handling — Builtin Configuration Values › SESSION_COOKIE_NAME",
            id="page-title-equals-first-heading",
        ),
        pytest.param(
            "Configuration Handling — Flask Documentation (3.1.x)",
            CONFIG_PATH,
            "Configuration Handling — Builtin Configuration Values › SESSION_COOKIE_NAME",
            id="site-suffix-dropped-for-first-heading",
        ),
        pytest.param(
            "configuration  handling",
            ["Configuration Handling"],
            "Configuration Handling",
            id="case-and-spaces-ignored",
        ),
        pytest.param(
            "Installation guide",
            ["Install", "From source"],
            "Installation guide — Install › From source",
            id="prefix-must-end-at-a-word",
        ),
        pytest.param(
            "Flask",
            ["Quickstart", "Routing"],
            "Flask — Quickstart › Routing",
            id="page-title-differs",
        ),
        pytest.param("Flask API", [], "Flask API", id="no-headings"),
        pytest.param("", ["A", " ", "B"], "A › B", id="no-page-title-blank-heading"),
        pytest.param("", [], "", id="nothing"),
        pytest.param(
            "Page",
            ["Alpha heading " * 3, "Beta heading " * 3, "Gamma heading " * 3, "Delta heading " * 3, "Last"],
            "Page — Alpha heading Alpha heading Alpha heading › … › Delta heading Delta heading Delta heading › Last",
            id="middle-headings-dropped-first",
        ),
        pytest.param(
            "Page",
            ["A" * 80, "B" * 40, "C" * 30],
            "Page — … › " + "C" * 30,
            id="then-all-but-the-last",
        ),
        pytest.param(
            "Page",
            ["word " * 40],
            "Page — " + ("word " * 22).strip() + "…",
            id="then-cut-at-a-word",
        ),
    ],
)
def test_chunk_title(page_title: str, heading_path: list[str], expected: str) -> None:
    title = chunk_title(page_title, heading_path)
    assert title == expected
    assert len(title) <= 120


@pytest.mark.parametrize(
    ("content", "max_chars", "expected"),
    [
        pytest.param(
            SESSION_CHUNK,
            300,
            "The name of the session cookie. Can be changed in case you already have a cookie with the same "
            "name. See the sessions docs for more about SESSION_COOKIE_NAME.",
            id="prose-only-as-plain-text",
        ),
        pytest.param(
            SESSION_CHUNK,
            120,
            "The name of the session cookie. Can be changed in case you already have a cookie with the same name.",
            id="cut-at-a-sentence",
        ),
        pytest.param(
            SESSION_CHUNK,
            30,
            "The name of the session…",
            id="cut-at-a-word",
        ),
        pytest.param(
            "- First item, with a comma\n- Second item\n\n> Quoted text.",
            300,
            "First item, with a comma Second item Quoted text.",
            id="lists-and-quotes-are-prose",
        ),
        pytest.param(
            "```python\n" + "x = 1\n" * 42 + "```",
            300,
            "Code example (python, 42 lines)",
            id="code-only",
        ),
        pytest.param(
            "## Example\n\n~~~ {.sh}\nls\n~~~\n\n```\none\n```\n\n    indented\n",
            300,
            "3 code examples (sh, 3 lines)",
            id="several-code-blocks",
        ),
        pytest.param(
            "| col1 | col2 | col3 |\n|---|---|---|\n" + "| a | b | c |\n" * 12,
            300,
            "Table: col1, col2, col3 (12 rows)",
            id="table-only",
        ),
        pytest.param(
            "```js\nf()\n```\n\n| a |\n|---|\n| 1 |",
            300,
            "Code example (js, 1 line); Table: a (1 row)",
            id="code-and-table",
        ),
        pytest.param("## Deprecated\n\n### Removed", 300, "Deprecated › Removed", id="headings-only"),
        pytest.param("", 300, "", id="empty"),
    ],
)
def test_chunk_summary(content: str, max_chars: int, expected: str) -> None:
    assert chunk_summary(content, max_chars) == expected


@pytest.mark.parametrize(
    "content",
    [
        SESSION_CHUNK,
        "A [link](https://example.org) and ![an image](img.png). " * 20,
        "Word " * 200,
        "x" * 1000,
        "| " + " | ".join(f"column number {i}" for i in range(60)) + " |\n|" + "---|" * 60,
        "See <https://example.org/a/very/long/path>. " * 10,
    ],
)
@pytest.mark.parametrize("max_chars", [40, 120, 300])
def test_summary_is_short_plain_text(content: str, max_chars: int) -> None:
    summary = chunk_summary(content, max_chars)
    assert 0 < len(summary) <= max_chars
    assert not re.search(r"\]\(|```|~~~|\*\*|^#", summary)
    assert chunk_summary(content, max_chars) == summary  # deterministic


def test_embedding_text() -> None:
    title = chunk_title("Configuration Handling", CONFIG_PATH)
    assert embedding_text(title, CONFIG_PATH, SESSION_CHUNK) == (
        "Configuration Handling — Builtin Configuration Values › SESSION_COOKIE_NAME\n"
        "The name of the session cookie. Can be changed in case you already have a cookie with the same "
        "name. See the sessions docs for more about SESSION_COOKIE_NAME.\n"
        'app.config["SESSION_COOKIE_NAME"] = "session"\n'
        "name | default\n"
        'SESSION_COOKIE_NAME | "session"'
    )


@pytest.mark.parametrize(
    ("title", "heading_path", "content", "expected"),
    [
        pytest.param(
            "How sessions work",
            ["Sessions", "Cookies"],
            "### Cookies\n\nText.",
            "How sessions work\nSessions › Cookies\nText.",
            id="path-added-when-title-lacks-it",
        ),
        pytest.param(
            "Page — A › … › D",
            ["A", "B", "C", "D"],
            "Text.\n\n#### E\n\nMore.",
            "Page — A › … › D\nA › B › C › D\nText.\nE\nMore.",
            id="shortened-title-gets-full-path-new-headings-kept",
        ),
        pytest.param("", [], "```\n```", "", id="empty"),
    ],
)
def test_embedding_text_header(title: str, heading_path: list[str], content: str, expected: str) -> None:
    assert embedding_text(title, heading_path, content) == expected


def test_extractive_enricher_pairs_in_order() -> None:
    sections = [
        Section("First part.", ["Guide", "One"], None),
        Section("```sh\nls\n```", ["Guide", "Two"], "two"),
    ]
    enricher: Enricher = ExtractiveEnricher()
    assert enricher.enrich("Guide", sections) == [
        ("Guide — One", "First part."),
        ("Guide — Two", "Code example (sh, 1 line)"),
    ]

"""Fuzzing, seeded and reproducible (hypothesis with `derandomize=True`): thousands of cases through real parts.

- Random and adversarial HTML through extract and chunk: no exception, fences balanced in every
  chunk, and no word of the main content lost.
- Mutated record files and JSONL through import: every problem is an error naming the file and a
  line of it, and a record is imported whole or not at all.
- Random query strings through the three search modes, FTS syntax included: no exception.

Each test records how many cases it ran in `CASES` (printed in the session's summary).
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from docshelf.chunk import chunk_markdown
from docshelf.embed import get_embedder
from docshelf.errors import ExtractError
from docshelf.extract import extract_document
from docshelf.records import import_records
from docshelf.search import SEARCH_MODES, HybridSearcher
from docshelf.store import open_store
from docshelf.store.sqlite import SQLiteStore

FUZZ = settings(derandomize=True, database=None, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture])
CASES: dict[str, int] = {}


def fuzz(examples: int) -> settings:
    """Return the fuzz settings with `examples` cases: the same cases on every run (derandomized)."""
    return settings(FUZZ, max_examples=examples)


def count(name: str) -> None:
    CASES[name] = CASES.get(name, 0) + 1


COMMONMARK = MarkdownIt("commonmark")


def fences_balanced(markdown: str) -> bool:
    """Return True when every fenced code block of `markdown` ends with its own closing fence.

    Read by a CommonMark parser, so a fence inside a list item or a quote counts as one; a block
    that the end of the text (or of its container) closed instead is open.
    """
    lines = markdown.split("\n")
    for token in COMMONMARK.parse(markdown):
        if token.type != "fence" or token.map is None:
            continue
        start, end = token.map
        last = re.sub(r"^[\s>]*(?:[-*+]|\d+[.)])?\s*", "", lines[end - 1]) if end - 1 > start else ""
        marker = token.markup
        if not (last.startswith(marker) and set(last.rstrip()) == {marker[0]}):
            return False
    return True


# -- HTML through extract and chunk ------------------------------------------------------------
WORD = st.from_regex(r"[a-z]{4,9}", fullmatch=True).map(lambda w: "zq" + w)  # "zq": never a Markdown or HTML word


@st.composite
def block(draw: st.DrawFn) -> tuple[str, list[str]]:
    """Return one block of main content as HTML, and the words a reader must find in its Markdown."""
    words = draw(st.lists(WORD, min_size=1, max_size=12))
    text = " ".join(words)
    kind = draw(st.sampled_from(["p", "h", "ul", "pre", "table", "inline", "quote", "dl"]))
    if kind == "p":
        return f"<p>{text}</p>", words
    if kind == "h":
        level = draw(st.integers(2, 4))
        return f'<h{level} id="{words[0]}">{text}</h{level}>', words
    if kind == "ul":
        items = "".join(f"<li>{w}</li>" for w in words)
        return (f"<ol>{items}</ol>" if draw(st.booleans()) else f"<ul>{items}</ul>"), words
    if kind == "pre":
        # Fence-like lines inside code: the converter must fence the block with a longer run.
        noise = draw(st.sampled_from(["```", "~~~", "````python", "    ```", "<b>", "&lt;tag&gt;", "# not a heading"]))
        lines = "\n".join([*words[:6], noise, *words[6:]])
        lang = draw(st.sampled_from(["python", "bash", "", "c++"]))
        cls = f' class="language-{lang}"' if lang else ""
        return f"<pre><code{cls}>{lines}</code></pre>", words
    if kind == "table":
        cells = "".join(f"<td>{w}</td>" for w in words[:4])
        rest = "".join(f"<tr><td>{w}</td></tr>" for w in words[4:])
        return f"<table><tr>{cells}</tr>{rest}</table>", words
    if kind == "inline":
        wrapped = " ".join(
            draw(st.sampled_from(["{}", "<b>{}</b>", "<em>{}</em>", "<code>{}</code>", '<a href="/x/{}">{}</a>']))
            .format(w, w) for w in words
        )
        return f"<p>{wrapped}</p>", words
    if kind == "quote":
        return f"<blockquote><p>{text}</p></blockquote>", words
    return "<dl>" + "".join(f"<dt>{w}</dt><dd>{w}x</dd>" for w in words) + "</dl>", words + [f"{w}x" for w in words]


@st.composite
def document(draw: st.DrawFn) -> tuple[str, list[str]]:
    """Return an HTML page whose <main> holds random blocks, with adversarial noise around and inside."""
    blocks = draw(st.lists(block(), min_size=1, max_size=10))
    body = "".join(html for html, _ in blocks)
    if draw(st.booleans()):  # unclosed tags and stray end tags, as sloppy generators write them
        body = body.replace("</p>", "", draw(st.integers(0, 3))) + "</div></span>"
    noise = draw(st.sampled_from(["", "<!-- a comment -->", "<script>var zqscript = 1;</script>",
                                  "<style>.zqstyle{}</style>", "\x00", "&amp;&nbsp;&#0;&#x110000;"]))
    html = (f"<!DOCTYPE html><html><head><title>T</title></head><body><nav><a href='/'>Home</a></nav>"
            f"<main><h1>Title</h1>{noise}{body}</main><footer>footer text</footer></body></html>")
    return html, [w for _, words in blocks for w in words]


@fuzz(1500)
@given(document())
def test_html_keeps_every_word_of_the_main_content(doc: tuple[str, list[str]]) -> None:
    count("html documents")
    html, words = doc
    extracted = extract_document(html, "html", "https://docs.example.org/guide/page.html")
    chunks = chunk_markdown(extracted.markdown, max_tokens=60)
    joined = "\n".join(c.content for c in chunks)
    for word in words:
        assert word in extracted.markdown, (word, html, extracted.markdown)
        assert word in joined, (word, extracted.markdown)
    assert all(fences_balanced(c.content) for c in chunks)
    assert "zqscript" not in extracted.markdown and "zqstyle" not in extracted.markdown


HTML_ALPHABET = st.sampled_from(list("<>/=\"' abcdefghijklmnopqrstuvwxyz`~#*_-[]()!&;\n\t\x00é中"))
TAGS = st.sampled_from(["<p>", "</p>", "<pre>", "</pre>", "<code>", "</code>", "<main>", "</main>", "<table>",
                        "<tr>", "<td>", "<li>", "<ul>", "<h2>", "</h2>", "```", "~~~~", "<br>", "<a href=x>",
                        "<svg>", "<math>", "<template>", "<![CDATA[", "]]>", "<!--", "-->", "<div>"])


@fuzz(1500)
@given(st.lists(st.one_of(TAGS, st.text(HTML_ALPHABET, max_size=20)), max_size=60).map("".join))
def test_adversarial_html_never_breaks_extract_or_chunk(html: str) -> None:
    count("adversarial html")
    try:
        extracted = extract_document(html, "html", "https://docs.example.org/")
    except ExtractError:
        return  # nothing to keep is a documented outcome
    for chunk in chunk_markdown(extracted.markdown, max_tokens=40):
        assert fences_balanced(chunk.content)


# -- records and JSONL through import ----------------------------------------------------------
def _records() -> tuple[str, str]:
    """Return a valid record file of 4 records on 2 pages, and the same as JSONL."""
    texts, lines = [], []
    for n, (url, number) in enumerate([("http://a.test/p", 0), ("http://a.test/p", 1), ("http://a.test/q", 0),
                                       ("http://a.test/q", 1)]):
        vector = json.dumps([round(float(x), 6) for x in np.random.default_rng(n).standard_normal(4)])
        texts.append(f"---\nurl: {url}\nsession_id: s\nchunk_number: {number}\ntitle: T{n}\nsummary: S{n}\n"
                     f"embedding: {vector}\nmetadata : {{\"source\": \"s\"}}\nupdated_dt: 2025-01-0{n + 1}T00:00:00\n"
                     f"embedding_model: test:fuzz\n---\nchunk {n} text\nwith two lines")
        lines.append(json.dumps({"url": url, "session_id": "s", "chunk_number": number, "title": f"T{n}",
                                 "summary": f"S{n}", "embedding": json.loads(vector), "metadata": {"source": "s"},
                                 "updated_dt": None, "embedding_model": "test:fuzz",
                                 "content": f"chunk {n} text"}))
    return "\n".join(texts), "\n".join(lines) + "\n"


RECORD_TEXT, JSONL_TEXT = _records()
MUTATION = st.tuples(st.sampled_from(["flip", "delete_line", "duplicate_line", "insert", "truncate", "swap"]),
                     st.integers(0, 10_000), st.binary(min_size=1, max_size=8))


def mutate(data: bytes, mutations: list[tuple[str, int, bytes]]) -> bytes:
    """Return `data` with the mutations applied in turn (each position taken modulo the current length)."""
    for kind, where, payload in mutations:
        lines = data.split(b"\n")
        line = where % max(len(lines), 1)
        at = where % max(len(data), 1)
        if kind == "flip" and data:
            data = data[:at] + payload[:1] + data[at + 1:]
        elif kind == "delete_line":
            data = b"\n".join(lines[:line] + lines[line + 1:])
        elif kind == "duplicate_line":
            data = b"\n".join(lines[:line + 1] + lines[line:])
        elif kind == "insert":
            data = data[:at] + payload + data[at:]
        elif kind == "truncate":
            data = data[:at]
        elif kind == "swap" and len(lines) > 1:
            other = (line + 1) % len(lines)
            lines[line], lines[other] = lines[other], lines[line]
            data = b"\n".join(lines)
    return data


def _import_mutated(original: str, suffix: str, mutations: list[tuple[str, int, bytes]]) -> None:
    data = mutate(original.encode(), mutations)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"records{suffix}"
        path.write_bytes(data)
        store = SQLiteStore(Path(folder) / "shelf.db")
        try:
            summary = import_records(store, [path])
            last_line = data.count(b"\n") + 1
            for error in summary.errors:
                assert str(error).startswith(f"{path}:{error.line}: ") and 1 <= error.line <= last_line, error
                assert "\n" not in error.reason
            stored = store.conn.execute("SELECT url, chunk_number, content FROM chunks").fetchall()
            assert len(stored) == summary.records  # each record whole or not at all
            assert store.conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            if not summary.errors:
                assert summary.records >= 1 or not data.strip()
        finally:
            store.close()


@fuzz(600)
@given(st.lists(MUTATION, min_size=1, max_size=4))
def test_mutated_record_files_import_whole_records_or_name_file_and_line(mutations) -> None:  # type: ignore[no-untyped-def]
    count("mutated record files")
    _import_mutated(RECORD_TEXT, ".txt", mutations)


@fuzz(600)
@given(st.lists(MUTATION, min_size=1, max_size=4))
def test_mutated_jsonl_imports_whole_records_or_names_file_and_line(mutations) -> None:  # type: ignore[no-untyped-def]
    count("mutated JSONL files")
    _import_mutated(JSONL_TEXT, ".jsonl", mutations)


# -- queries through the three search modes ----------------------------------------------------
FTS_SYNTAX = ['"', '""', "*", "NEAR", "NEAR(", "AND", "OR", "NOT", "-", "(", ")", "((", "^", ":", "col:", "+",
              "{", "}", "'", "\x00", "\\", "%", "_", "NEAR/2", "-x", "a*b", "\ufeff", "\u200b", "😀", "ß", "İ"]
QUERY = st.one_of(
    st.text(max_size=200),
    st.lists(st.one_of(st.sampled_from(FTS_SYNTAX), st.from_regex(r"[A-Za-z_.]{1,12}", fullmatch=True)),
             max_size=20).map(" ".join),
    st.lists(st.sampled_from(FTS_SYNTAX), max_size=30).map("".join),
    st.integers(1, 10_000).map(lambda n: ("cache " * n)[:10_000]),
    st.just("\x00" * 50),
)


@pytest.fixture(scope="module")
def searcher(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from test_shelf_tools import build_widgets_shelf

    path = tmp_path_factory.mktemp("fuzz") / "shelf.db"
    build_widgets_shelf(path)
    store = open_store(str(path))
    embedder = get_embedder(None)
    yield HybridSearcher(store, lambda: embedder)
    store.close()


@fuzz(2000)
@given(QUERY)
def test_random_queries_never_break_bm25(searcher, query: str) -> None:  # type: ignore[no-untyped-def]
    count("bm25 queries")
    assert len(searcher.search(query, k=5, mode="bm25")) <= 5


@fuzz(300)
@given(QUERY, st.sampled_from([m for m in SEARCH_MODES if m != "bm25"]))
def test_random_queries_never_break_vector_or_hybrid_search(searcher, query: str, mode: str) -> None:  # type: ignore[no-untyped-def]
    count(f"{mode} queries")
    hits = searcher.search(query, k=5, mode=mode)  # type: ignore[arg-type]
    assert len(hits) <= 5 and all(re.match(r"https?://", h.url) for h in hits)


def test_zz_report_fuzz_counts(capsys: pytest.CaptureFixture[str]) -> None:
    """Print how many cases each fuzz test ran (it runs last in this file)."""
    with capsys.disabled():
        print("\nfuzz cases: " + ", ".join(f"{name} {n}" for name, n in sorted(CASES.items())))


def test_the_fence_check_sees_an_open_fence() -> None:
    assert fences_balanced("```python\nx = 1\n```\n- item\n\n  ~~~\n  y\n  ~~~")
    assert not fences_balanced("```python\nx = 1")
    assert not fences_balanced("- item\n\n  ````\n  y\n  ```")

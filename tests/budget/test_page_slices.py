"""Budgeted page reads: for random pages and budgets, no result exceeds its budget, fences balance, and
following cursors returns every byte of the page exactly once, in order (property tests, real SQLite shelf)."""

from __future__ import annotations

import hashlib
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from docshelf.budget.page_slices import PageLayout
from docshelf.budget.tokens import get_token_counter
from docshelf.embed import get_embedder
from docshelf.errors import ConfigError
from docshelf.models import Page, Source
from docshelf.search import HybridSearcher
from docshelf.shelf_tools import NotOnShelfError, ShelfTools
from docshelf.store.sqlite import SQLiteStore

URL = "https://docs.example/page.html"

words = st.text(alphabet="abcdefghij élø_()`=.,", min_size=1, max_size=12).filter(lambda w: w.strip())
sentence = st.lists(words, min_size=1, max_size=60).map(" ".join)
code_line = st.lists(st.sampled_from(["x = 1", "print(x)", "    return y", "# not a heading", "", "é→λ"]),
                     min_size=1, max_size=3).map(" ".join)


@st.composite
def block(draw) -> str:
    kind = draw(st.sampled_from(["heading", "para", "code", "list", "longline"]))
    if kind == "heading":
        anchor = draw(st.sampled_from(["", " {#a1}", " {#b2}", " {#sec-x}"]))
        return "#" * draw(st.integers(1, 4)) + " " + draw(sentence)[:40] + anchor
    if kind == "code":
        fence = draw(st.sampled_from(["```", "````", "~~~"]))
        lines = draw(st.lists(code_line, min_size=0, max_size=40))
        closing = [fence] if draw(st.integers(0, 9)) else []  # now and then a block the page leaves open
        return "\n".join([fence + draw(st.sampled_from(["", "python", "sh"])), *lines, *closing])
    if kind == "list":
        return "\n".join("- " + item for item in draw(st.lists(sentence, min_size=1, max_size=8)))
    if kind == "longline":
        return " ".join(draw(st.lists(words, min_size=100, max_size=400)))
    return draw(sentence)


pages = st.lists(block(), min_size=1, max_size=25).map(lambda blocks: "\n\n".join(blocks) + "\n")


def balanced(markdown: str) -> bool:
    """True when every code fence opened in `markdown` is closed (CommonMark: same char, at least as long)."""
    marker = None
    for line in markdown.splitlines():
        stripped = line.strip()
        if marker is None:
            opened = re.match(r"(`{3,}|~{3,})([^`]*)$", stripped)
            if opened:
                marker = opened.group(1)
        elif set(stripped) == {marker[0]} and len(stripped) >= len(marker):
            marker = None
    return marker is None


@pytest.fixture(scope="module")
def tools(tmp_path_factory: pytest.TempPathFactory):
    store = SQLiteStore(tmp_path_factory.mktemp("budget") / "shelf.db")
    store.upsert_source(Source("docs", "https://docs.example/"))
    yield ShelfTools(store, HybridSearcher(store, lambda: get_embedder(None)))
    store.close()


def put_page(tools: ShelfTools, markdown: str) -> None:
    digest = hashlib.sha256(markdown.encode()).hexdigest()
    tools.store.replace_page(Page(URL, "docs", "A page", markdown, digest), [], [])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(markdown=pages, budget=st.integers(100, 1500))
def test_cursors_return_every_byte_once_within_budget_with_balanced_fences(tools, markdown: str, budget: int) -> None:
    put_page(tools, markdown)
    counter = get_token_counter()
    read, cursor, calls = b"", None, 0
    while True:
        part = tools.read_page_text(URL, max_tokens=budget, cursor=cursor)
        shown = part.to_markdown()
        assert counter.count(shown) <= budget == part.max_tokens
        assert part.tokens == counter.count(shown)
        assert balanced(part.shown), part.shown
        assert part.start == len(read)
        read += part.text.encode()
        calls += 1
        assert calls < 5_000
        if part.cursor is None:
            break
        assert part.end > part.start
        cursor = part.cursor
    assert read == markdown.encode()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(markdown=pages, budget=st.integers(150, 2000), around=st.integers(0, 3))
def test_around_an_anchor_stays_in_budget_and_starts_no_later_than_its_section(tools, markdown: str, budget: int,
                                                                             around: int) -> None:
    layout = PageLayout(markdown)
    anchors = [s for s in layout.sections if s.anchor]
    put_page(tools, markdown)
    if not anchors:
        with pytest.raises(NotOnShelfError, match="no section #a1"):
            tools.read_page_text(URL + "#a1", max_tokens=budget, around=around)
        return
    target = anchors[0]
    part = tools.read_page_text(f"{URL}#{target.anchor}", max_tokens=budget, around=around)
    assert get_token_counter().count(part.to_markdown()) <= budget
    assert balanced(part.shown)
    assert len(markdown[: target.start].encode()) >= part.start  # the anchor's section is where it begins, or after
    assert part.end > part.start


def test_whole_sections_first_then_blocks_never_inside_a_fence(tools) -> None:
    code = "\n".join(f"line_{i} = {i}" for i in range(400))
    medium = " ".join(["medium"] * 150)
    markdown = (f"# Intro {{#intro}}\n\nShort intro.\n\n## Medium {{#medium}}\n\n{medium}\n\n"
                f"## Big {{#big}}\n\nBefore.\n\n```python\n{code}\n```\n\nAfter.\n")
    put_page(tools, markdown)
    # 226: the Medium section and the heading (with the date the page changed) fit, Intro beside them does not.
    first = tools.read_page_text(URL, max_tokens=226)
    assert first.text == "# Intro {#intro}\n\nShort intro.\n\n"  # whole: the next section fits a read of its own
    second = tools.read_page_text(URL, max_tokens=226, cursor=first.cursor)
    assert second.text.startswith("## Medium") and second.text.endswith(f"{medium}\n\n")
    third = tools.read_page_text(URL, max_tokens=226, cursor=second.cursor)
    # Big fits no read: it is cut, between code lines, and the cut code block is closed
    assert third.text.startswith("## Big {#big}\n\nBefore.\n\n```python\nline_0 = 0\n")
    assert third.shown.endswith("\n```") and "After." not in third.text
    fourth = tools.read_page_text(URL, max_tokens=226, cursor=third.cursor)
    assert fourth.shown.startswith("```python\nline_") and fourth.text.startswith("line_")
    hit = tools.read_page_text(URL + "#medium", max_tokens=600, around=1)
    assert hit.text.startswith("## Medium")  # the neighbours do not fit beside it
    wide = tools.read_page_text(URL + "#medium", max_tokens=20_000, around=1)
    assert wide.text == markdown and wide.cursor is None and "[End of page.]" in wide.to_markdown()


def test_bad_budgets_cursors_and_changed_pages_are_clear_errors(tools) -> None:
    put_page(tools, "# One\n\ntext\n")
    with pytest.raises(ConfigError, match="max_tokens=5: give 100"):
        tools.read_page_text(URL, max_tokens=5)
    with pytest.raises(NotOnShelfError, match="not one read_page gave"):
        tools.read_page_text(URL, cursor="banana")
    with pytest.raises(NotOnShelfError, match="changed since cursor"):
        tools.read_page_text(URL, cursor="3:" + hashlib.sha256(b"x").hexdigest()[:8])
    with pytest.raises(ConfigError, match="around needs a URL with #anchor"):
        tools.read_page_text(URL, around=2)


passage_texts = st.lists(pages, min_size=1, max_size=12)


@settings(max_examples=40, deadline=None)
@given(texts=passage_texts, budget=st.integers(100, 3000))
def test_search_results_fit_whole_passages_best_first_within_budget(texts: list[str], budget: int) -> None:
    from docshelf.shelf_tools import ChunkRef, Passage, SearchResult

    passages = [Passage(ChunkRef(f"{URL}#p{i}", URL, "A page", i), "docs", ["A page", f"Part {i}"], text, 1.0 / (i + 1))
                for i, text in enumerate(texts)]
    fitted = SearchResult("query", passages, budget, get_token_counter()).fit_tokens()
    assert fitted.tokens == get_token_counter().count(fitted.markdown) <= budget
    assert balanced(fitted.markdown)
    assert len(fitted.passages) + fitted.more == len(passages)
    if fitted.cut:
        assert len(fitted.passages) == 1 and fitted.passages[0].content != passages[0].content
    else:  # whole passages (an open code block closed), a prefix of the ranking: the next one did not fit
        shown = [p.content for p in fitted.passages]
        assert shown == [PageLayout(p.content.strip()).render(0, len(p.content.strip())) if not balanced(p.content)
                         else p.content for p in passages[: len(shown)]]
    if fitted.more:
        assert f"{fitted.more} more passages matched" in fitted.markdown

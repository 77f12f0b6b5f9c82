"""The chunker: heading paths and anchors, budgets, and the contract that no code fence is broken.

Every test counts with the bundled model's real tokenizer. Token counts quoted in comments are
that tokenizer's: backticks, pipes and dashes are one token each, short English words one token.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from docshelf.chunk import chunk_markdown
from docshelf.embed.tokenizer import count_tokens
from docshelf.enrich import embedded_tokens
from docshelf.models import Section, SectionStart

FENCE_LINE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")
LIST_MARKER = re.compile(r"^\s*(?:-|\d+\.)\s+")


def as_tuples(sections: list[Section]) -> list[tuple[list[str], str | None, str]]:
    return [(s.heading_path, s.anchor, s.content) for s in sections]


@pytest.mark.parametrize(
    ("markdown", "expected"),
    [
        pytest.param("", [], id="empty"),
        pytest.param(" \n\n\t\n", [], id="blank"),
        pytest.param("Just a sentence.\n", [([], None, "Just a sentence.")], id="no-heading"),
        pytest.param(
            "# Title {#top}\n\nText.",
            [(["Title"], "top", "# Title\n\nText.")],
            id="anchor-moves-out-of-content",
        ),
        pytest.param(
            "## The `add_argument()` method {#add .cls}\n\nText.",
            [(["The add_argument() method"], "add", "## The `add_argument()` method\n\nText.")],
            id="path-is-plain-text-content-keeps-markdown",
        ),
        pytest.param(
            "# [Link](https://x.org) *em* ##\n\nText.",
            [(["Link em"], None, "# [Link](https://x.org) *em* ##\n\nText.")],
            id="closing-hashes-and-inline-markup",
        ),
        pytest.param(
            "# A {#a}\n\none\n\n## B\n\ntwo\n\n### C {#c}\n\nthree\n\n## D\n\nfour\n\n# E\n\nfive",
            [
                (["A"], "a", "# A\n\none"),
                (["A", "B"], "a", "## B\n\ntwo"),
                (["A", "B", "C"], "c", "### C\n\nthree"),
                (["A", "D"], "a", "## D\n\nfour"),
                (["E"], None, "# E\n\nfive"),
            ],
            id="path-and-nearest-anchor",
        ),
        pytest.param(
            "Intro.\n\n### Deep\n\nx\n\n## Shallower\n\ny",
            [
                ([], None, "Intro."),
                (["Deep"], None, "### Deep\n\nx"),
                (["Shallower"], None, "## Shallower\n\ny"),
            ],
            id="skipped-levels",
        ),
        pytest.param(
            "# A\n\n```sh\n# not a heading\n```\n\n    # indented code, not a heading\n\n> # quoted heading",
            [
                (
                    ["A"],
                    None,
                    "# A\n\n```sh\n# not a heading\n```\n\n    # indented code, not a heading\n\n> # quoted heading",
                )
            ],
            id="headings-in-code-and-quotes-do-not-split",
        ),
        pytest.param(
            '# A\n\n````md title="x.md"\n```\ninner\n```\n````',
            [(["A"], None, '# A\n\n````md title="x.md"\n```\ninner\n```\n````')],
            id="shorter-fence-inside-longer",
        ),
        pytest.param(
            "# A\n\n~~~ python\ncode\n",
            [(["A"], None, "# A\n\n~~~ python\ncode\n~~~")],
            id="unclosed-fence-gets-closed",
        ),
        pytest.param(
            "See [the docs][d].\n\n[d]: https://example.org\n\n# A\n\ntext",
            [([], None, "See [the docs][d].\n\n[d]: https://example.org"), (["A"], None, "# A\n\ntext")],
            id="reference-definitions-kept",
        ),
        pytest.param(
            "line one\r\nline two\r\n",
            [([], None, "line one\nline two")],
            id="crlf-normalised",
        ),
    ],
)
def test_structure(markdown: str, expected: list[tuple[list[str], str | None, str]]) -> None:
    assert as_tuples(chunk_markdown(markdown, min_tokens=0, pack=False)) == expected


def test_sections_are_packed_with_their_starts() -> None:
    """Siblings and subsections share a chunk up to the budget; each keeps its anchor and where it starts."""
    markdown = "# A {#a}\n\none\n\n## B {#b}\n\ntwo\n\n### C {#c}\n\nthree\n\n## D\n\nfour\n\n# E\n\nfive"
    first, second = chunk_markdown(markdown)
    assert (first.heading_path, first.anchor) == (["A"], "a")
    assert first.content == "# A\n\none\n\n## B\n\ntwo\n\n### C\n\nthree\n\n## D\n\nfour"
    assert first.sections == [
        SectionStart(0, "a", ["A"]),
        SectionStart(first.content.index("## B"), "b", ["A", "B"]),
        SectionStart(first.content.index("### C"), "c", ["A", "B", "C"]),
        SectionStart(first.content.index("## D"), "a", ["A", "D"]),
    ]
    # E is no section of A's: a chunk never climbs out of the section it is in.
    assert (second.heading_path, second.anchor, second.sections) == (["E"], None, [])


def test_a_packed_chunk_is_named_by_what_its_sections_share() -> None:
    markdown = "# Page\n\n## Install {#install}\n\nRun pip.\n\n## Configure {#configure}\n\nSet the key."
    (only,) = chunk_markdown(markdown)
    assert only.heading_path == ["Page"]
    assert [s.anchor for s in only.sections] == [None, "install", "configure"]


def test_packing_stops_at_the_budget() -> None:
    sections = "\n\n".join(f"## Part {i}\n\n" + "word " * 45 for i in range(6))
    chunks = chunk_markdown(sections, max_tokens=150)
    assert [len(c.sections) for c in chunks] == [3, 3]
    assert all(embedded_tokens(c.content) <= 150 for c in chunks)
    assert len(chunk_markdown(sections, max_tokens=150, pack=False)) == 6


def test_link_targets_do_not_count() -> None:
    """The budget is the text the embedder reads: the same page served from another host chunks the same."""
    body = " ".join(f"[item {i}](https://docs.example.org/very/long/path/{i}.html#anchor-{i})" for i in range(60))
    mirrored = body.replace("https://docs.example.org", "http://127.0.0.1:8765")
    assert len(chunk_markdown(body)) == 1
    assert [c.content.count("](") for c in chunk_markdown(mirrored)] == [c.content.count("](") for c in chunk_markdown(body)]


@pytest.mark.parametrize(
    ("markdown", "max_tokens", "min_tokens", "expected"),
    [
        pytest.param(
            "# A\n\none\n\n## B\n\ntwo\n\n## C\n\nthree",
            220,
            40,
            [(["A"], None, "# A\n\none\n\n## B\n\ntwo\n\n## C\n\nthree")],
            id="small-sections-packed-under-first-path",
        ),
        pytest.param(
            # "## B" and "### C" are small; C may not join "## D", its uncle, so it joins B.
            "## A\n\n" + "word " * 30 + "\n\n## B\n\nb\n\n### C\n\nc\n\n# D\n\n" + "word " * 30,
            40,
            10,
            [
                (["A"], None, "## A\n\n" + "word " * 29 + "word"),
                (["B"], None, "## B\n\nb\n\n### C\n\nc"),
                (["D"], None, "# D\n\n" + "word " * 29 + "word"),
            ],
            id="no-merge-across-parents",
        ),
        pytest.param(
            # 8 tokens a sentence
            "Alpha beta gamma delta epsilon zeta eta. " * 3,
            17,
            0,
            [
                (
                    [],
                    None,
                    "Alpha beta gamma delta epsilon zeta eta. Alpha beta gamma delta epsilon zeta eta.",
                ),
                ([], None, "Alpha beta gamma delta epsilon zeta eta."),
            ],
            id="prose-at-sentences",
        ),
        pytest.param(
            "one two three four five six seven eight nine ten",
            4,
            0,
            [([], None, "one two three four"), ([], None, "five six seven eight"), ([], None, "nine ten")],
            id="prose-at-words-last-resort",
        ),
        pytest.param(
            "one two three four five six seven eight nine",
            4,
            2,
            [([], None, "one two three four"), ([], None, "five six seven"), ([], None, "eight nine")],
            id="no-tiny-tail",
        ),
        pytest.param(
            # opening line 13 tokens, closing 3, each code line 2
            '```py title="a.py"\nline one\nline two\n\nline three\n```',
            20,
            0,
            [
                ([], None, '```py title="a.py"\nline one\nline two\n```'),
                ([], None, '```py title="a.py"\nline three\n```'),
            ],
            id="code-re-fenced-verbatim",
        ),
        pytest.param(
            "```\n" + "x" * 5 + " = " + " + ".join(["y"] * 30) + "\nshort\n```",
            20,
            0,
            [([], None, "```\nxxxxx = " + " + ".join(["y"] * 30) + "\n```"), ([], None, "```\nshort\n```")],
            id="long-code-line-stays-whole",
        ),
        pytest.param(
            # header row 5 tokens, separator 9, each row 5
            "| a | b |\n|---|---|\n| 1 | 2 |\n| 3 | 4 |\n| 5 | 6 |",
            24,
            0,
            [
                ([], None, "| a | b |\n|---|---|\n| 1 | 2 |\n| 3 | 4 |"),
                ([], None, "| a | b |\n|---|---|\n| 5 | 6 |"),
            ],
            id="table-between-rows-header-repeated",
        ),
        pytest.param(
            "- one two\n- three four\n\n  five six\n- seven eight",
            6,
            0,
            [([], None, "- one two"), ([], None, "- three four\n\n  five six"), ([], None, "- seven eight")],
            id="list-between-items",
        ),
        pytest.param(
            "- one two\n- three four\n\n  five six\n- seven eight",
            4,
            0,
            [
                ([], None, "- one two"),
                ([], None, "- three four"),
                ([], None, "  five six"),
                ([], None, "- seven eight"),
            ],
            id="list-item-between-its-blocks",
        ),
        pytest.param(
            # "> ```" is 4 tokens, "> code" 2
            "> quoted\n>\n> ```\n> code\n> more\n> ```",
            11,
            0,
            [
                ([], None, "> quoted\n>"),
                ([], None, "> ```\n> code\n> ```"),
                ([], None, "> ```\n> more\n> ```"),
            ],
            id="code-in-blockquote-re-fenced-with-prefix",
        ),
        pytest.param(
            # "## B" has no text of its own: it opens its subsection's first chunk, then C's path goes on.
            "## B {#b}\n\n### C {#c}\n\nalpha beta gamma delta. epsilon zeta eta theta.",
            12,
            0,
            [
                (["B"], "b", "## B\n\n### C\n\nalpha beta gamma delta."),
                (["B", "C"], "c", "epsilon zeta eta theta."),
            ],
            id="empty-section-opens-its-subsection",
        ),
        pytest.param(
            # A table with no rows cannot be cut (14 tokens): it gets a chunk of its own.
            "Some words here.\n\n| a | b |\n|---|---|",
            12,
            0,
            [([], None, "Some words here."), ([], None, "| a | b |\n|---|---|")],
            id="unsplittable-block-alone",
        ),
        pytest.param(
            # A heading never ends a chunk: it takes the first words of its paragraph along.
            "## Title\n\nalpha beta gamma delta epsilon.",
            5,
            0,
            [(["Title"], None, "## Title\n\nalpha beta"), (["Title"], None, "gamma delta epsilon.")],
            id="heading-keeps-its-first-block",
        ),
    ],
)
def test_splitting(
    markdown: str, max_tokens: int, min_tokens: int, expected: list[tuple[list[str], str | None, str]]
) -> None:
    chunks = chunk_markdown(markdown, max_tokens=max_tokens, min_tokens=min_tokens, count_tokens=count_tokens, pack=False)
    assert as_tuples(chunks) == expected


@pytest.mark.parametrize(("max_tokens", "min_tokens"), [(0, 0), (10, 11), (10, -1)])
def test_bad_budget(max_tokens: int, min_tokens: int) -> None:
    with pytest.raises(ValueError, match="min_tokens"):
        chunk_markdown("text", max_tokens=max_tokens, min_tokens=min_tokens)


def test_origin_d1_fence_cut_regression() -> None:
    """Origin D1: prose 2000 + a 500-char code block + prose 3000 put a lone fence in the next chunk."""
    prose = ("The application object is created once and configured from a module. " * 40)[:2000]
    code = "```python\n" + "\n".join(
        f"def view_{i}(request):\n    return render(request, page)" for i in range(8)
    )
    code += "\n```"  # 500 characters, 127 tokens
    markdown = f"{prose}\n\n{code}\n\n{prose}{prose[:1000]}"
    sections = chunk_markdown(markdown)
    assert len(sections) > 2
    for section in sections:
        assert fences_balanced(section.content)
        assert embedded_tokens(section.content) <= 200
    # The code block fits a chunk, so it is kept whole in one.
    assert sum(code in section.content for section in sections) == 1


# -- the property test ---------------------------------------------------------------------------

URL = "https://example.org/" + "path/" * 40  # one word of over 80 tokens
WORDS = ["alpha", "beta", "Flask", "config", "request", "é", "x", "the", "route()", "`code`", "**bold**"]
INFO_STRINGS = ["", "python", 'python title="x.py"', "bash  -x  ", "{.sh}"]


@dataclass
class Doc:
    """A generated document and what the chunker must report for it."""

    markdown: str
    heading_lines: dict[str, tuple[list[str], str | None]]
    """Each heading line, as it must appear in a chunk, with its heading path and anchor."""
    fence_openings: set[str]
    removable: set[str]
    """Lines the chunker may repeat: fence lines and table header and separator rows."""
    atomic_lines: set[str]
    """Lines never cut: code lines and table rows."""


words = st.lists(st.sampled_from([*WORDS, URL]), min_size=1, max_size=14)
sentence = words.map(lambda ws: " ".join(ws) + ".")
paragraph = st.lists(sentence, min_size=1, max_size=9).flatmap(
    lambda ss: st.sampled_from([" ", "\n"]).map(lambda sep: "Start " + sep.join(ss))
)
bullet_list = st.lists(sentence, min_size=1, max_size=8).map(lambda ss: "\n".join("- " + s for s in ss))
ordered_list = st.lists(sentence, min_size=1, max_size=8).map(
    lambda ss: "\n".join(f"{i}. {s}" for i, s in enumerate(ss, 1))
)


@st.composite
def table(draw: st.DrawFn) -> tuple[str, list[str]]:
    columns = draw(st.integers(2, 4))
    cell = st.lists(st.sampled_from(WORDS[:9]), min_size=1, max_size=4).map(" ".join)
    rows = draw(st.lists(st.lists(cell, min_size=columns, max_size=columns), max_size=30))
    header = "| " + " | ".join(f"col{i}" for i in range(columns)) + " |"
    separator = "|" + "---|" * columns
    lines = [header, separator, *("| " + " | ".join(row) + " |" for row in rows)]
    return "\n".join(lines), [header, separator]


@st.composite
def fence(draw: st.DrawFn) -> tuple[str, list[str]]:
    char = draw(st.sampled_from("`~"))
    fence_run = char * draw(st.integers(3, 5))
    info = draw(st.sampled_from(INFO_STRINGS))
    inner_runs = [char * n for n in range(1, len(fence_run))] + ["`" * 4 if char == "~" else "~" * 4]
    code_line = st.sampled_from(
        [
            "x = 1",
            "    return f(x)",
            "# not a heading",
            "",
            "| not | a table |",
            "def f(a, b):",
            "- not a list",
        ]
        + inner_runs
        + ["print(" + " + ".join(["value"] * 60) + ")"]  # one line longer than small budgets
    )
    body = draw(st.lists(code_line, max_size=40))
    opening = fence_run + info
    return "\n".join([opening, *body, fence_run]), [opening, fence_run]


@st.composite
def documents(draw: st.DrawFn) -> Doc:
    parts: list[str] = []
    heading_lines: dict[str, tuple[list[str], str | None]] = {}
    fence_openings: set[str] = set()
    removable: set[str] = set()
    atomic_lines: set[str] = set()
    stack: list[tuple[int, str, str | None]] = []
    for index in range(draw(st.integers(1, 14))):
        kind = draw(
            st.sampled_from(["heading", "heading", "paragraph", "bullets", "ordered", "table", "fence"])
        )
        if kind == "heading":
            level = draw(st.integers(1, 4))
            title = f"Heading {index} " + " ".join(draw(st.lists(st.sampled_from(WORDS[:6]), max_size=3)))
            anchor = f"h-{index}" if draw(st.booleans()) else None
            while stack and stack[-1][0] >= level:
                stack.pop()
            stack.append((level, title.strip(), anchor))
            line = "#" * level + " " + title.strip()
            heading_lines[line] = (
                [t for _, t, _ in stack],
                next((a for *_, a in reversed(stack) if a), None),
            )
            parts.append(line + (f" {{#{anchor}}}" if anchor else ""))
        elif kind in ("table", "fence"):
            text, special = draw(table() if kind == "table" else fence())
            removable.update(special)
            atomic_lines.update(text.split("\n"))
            if kind == "fence":
                fence_openings.add(special[0])
            parts.append(text)
        else:
            parts.append(
                draw({"paragraph": paragraph, "bullets": bullet_list, "ordered": ordered_list}[kind])
            )
    return Doc("\n\n".join(parts) + "\n", heading_lines, fence_openings, removable, atomic_lines)


def fence_blocks(text: str) -> list[tuple[str, list[str], bool]]:
    """Return each top-level fenced block of `text`: opening line, body lines, whether it closes."""
    blocks: list[tuple[str, list[str], bool]] = []
    opening: re.Match[str] | None = None
    body: list[str] = []
    for line in text.split("\n"):
        match = FENCE_LINE.match(line)
        if opening is None:
            if match and not (match.group(1)[0] == "`" and "`" in match.group(2)):
                opening, body = match, []
            continue
        run = opening.group(1)
        if (
            match
            and match.group(1)[0] == run[0]
            and len(match.group(1)) >= len(run)
            and not match.group(2).strip()
        ):
            blocks.append((opening.group(0), body, True))
            opening = None
        else:
            body.append(line)
    if opening is not None:
        blocks.append((opening.group(0), body, False))
    return blocks


def common_prefix(paths: list[list[str]]) -> list[str]:
    shared = paths[0]
    for path in paths[1:]:
        n = 0
        while n < min(len(shared), len(path)) and shared[n] == path[n]:
            n += 1
        shared = shared[:n]
    return shared


def fences_balanced(text: str) -> bool:
    return all(closed for _, _, closed in fence_blocks(text))


def non_space(text: str) -> str:
    return re.sub(r"\s+", "", text)


def without_lines(text: str, lines: set[str]) -> str:
    return "\n".join(line for line in text.split("\n") if line not in lines)


def is_unsplittable(line: str, doc: Doc) -> bool:
    """Return whether a line may exceed the budget alone: a code line, a table row, or a single word."""
    return line in doc.atomic_lines or len(LIST_MARKER.sub("", line).split()) == 1


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=documents(), budget=st.sampled_from([(24, 0), (60, 12), (120, 30), (220, 40)]))
def test_chunks_keep_the_contract(doc: Doc, budget: tuple[int, int]) -> None:
    """For any document, every chunk keeps the contract of docshelf.chunk.

    - No chunk is empty.
    - Fences are balanced in every chunk; each is opened by one of the input's own opening lines
      (fence run and info string verbatim), and every line inside it is an input line.
    - A chunk over `max_tokens` holds, besides heading, fence and table header/separator lines,
      at most one line, and that line is a code line, a table row or a single word.
    - Content is preserved: remove the `{#id}` suffixes from the input, and remove every fence
      line and table header/separator line (the lines the chunker may repeat) from both the
      input and the chunks joined with blank lines; then both have the same non-whitespace
      characters in the same order.
    - A chunk's heading path and anchor are those of the section it starts in.
    """
    max_tokens, min_tokens = budget
    sections = chunk_markdown(doc.markdown, max_tokens=max_tokens, min_tokens=min_tokens, count_tokens=count_tokens)
    input_lines = set(doc.markdown.split("\n"))

    for section in sections:
        content = section.content
        assert content.strip(), "empty chunk"
        for opening, body, closed in fence_blocks(content):
            assert closed, content
            assert opening in doc.fence_openings
            assert set(body) <= input_lines
        if count_tokens(content) > max_tokens:
            rest = [
                line
                for line in content.split("\n")
                if line.strip() and line not in doc.removable and line not in doc.heading_lines
            ]
            assert len(rest) <= 1, content
            assert all(is_unsplittable(line, doc) for line in rest), content

    expected = re.sub(r"[ \t]*\{#h-\d+\}$", "", doc.markdown, flags=re.MULTILINE)
    joined = "\n\n".join(s.content for s in sections)
    assert non_space(without_lines(joined, doc.removable)) == non_space(
        without_lines(expected, doc.removable)
    )

    current: tuple[list[str], str | None] = ([], None)
    for section in sections:
        lines = section.content.split("\n")
        in_code = {line for _, body, _ in fence_blocks(section.content) for line in body}
        headings = [line for line in lines if line in doc.heading_lines and line not in in_code]
        if lines[0] in doc.heading_lines:
            current = doc.heading_lines[lines[0]]
        starts = section.sections or [SectionStart(0, section.anchor, section.heading_path)]
        assert (starts[0].heading_path, starts[0].anchor) == current
        assert (section.heading_path, section.anchor) == (common_prefix([s.heading_path for s in starts]), current[1])
        for start in starts[1:]:
            line = section.content[start.offset :].split("\n", 1)[0]
            assert (start.heading_path, start.anchor) == doc.heading_lines[line]
        if headings:
            current = doc.heading_lines[headings[-1]]

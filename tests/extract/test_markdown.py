"""Markdown rules: code blocks, tables, links, images, escaping and whitespace."""

from __future__ import annotations

import pytest

from docshelf.extract import extract_html
from docshelf.extract.markdown import normalize_markdown

URL = "https://docs.example.org/guide/page.html"


def convert(body: str) -> str:
    """Return the Markdown of `body` placed in a page's <main>."""
    return extract_html(f"<html><body><main>{body}</main></body></html>", URL).markdown


@pytest.mark.parametrize(
    ("block", "language"),
    [
        ('<pre><code class="language-rust">fn main() {}</code></pre>', "rust"),
        ('<pre class="lang-go"><code>fn main() {}</code></pre>', "go"),
        (
            '<div class="highlight-python notranslate"><div class="highlight"><pre><span></span>fn main() {}</pre></div></div>',
            "python",
        ),
        (
            '<div class="highlight-default notranslate"><div class="highlight"><pre>fn main() {}</pre></div></div>',
            "python",
        ),
        (
            '<div class="highlight-none notranslate"><div class="highlight"><pre>fn main() {}</pre></div></div>',
            "",
        ),
        ('<div class="language-js highlight"><pre><span></span><code>fn main() {}</code></pre></div>', "js"),
        ('<pre class="prism-code language-tsx"><code>fn main() {}</code></pre>', "tsx"),
        ('<div class="highlight highlight-source-shell"><pre>fn main() {}</pre></div>', "shell"),
        ('<pre><code class="hljs" data-lang="ruby">fn main() {}</code></pre>', "ruby"),
        ("<pre>fn main() {}</pre>", ""),
    ],
)
def test_code_block_language(block: str, language: str) -> None:
    assert convert(block) == f"```{language}\nfn main() {{}}\n```\n"


def test_code_text_is_exact() -> None:
    code = 'def f(a_b, *args, **kw):\n\tif a < b and c > d:  # **not bold**\n        return "[x](y) \\\\_ &amp;"\n\n\n    pass'
    html_code = code.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    markdown = convert(f'<pre><code class="language-python">{html_code}\n</code></pre>')
    assert markdown == f"```python\n{code}\n```\n"


def test_pygments_spans_are_flattened_and_line_numbers_dropped() -> None:
    table = (
        '<div class="highlight-python notranslate"><table class="highlighttable"><tr>'
        '<td class="linenos"><div class="linenodiv"><pre>1\n2</pre></div></td>'
        '<td class="code"><div class="highlight"><pre><span></span><span class="kn">import</span> <span class="nn">os</span>\n'
        '<span class="nb">print</span><span class="p">(</span><span class="n">os</span><span class="p">)</span>\n'
        "</pre></div></td></tr></table></div>"
    )
    assert convert(table) == "```python\nimport os\nprint(os)\n```\n"
    inline = '<pre><code class="language-python"><span class="linenos">1</span>x = 1\n<span class="linenos">2</span>y = 2\n</code></pre>'
    assert convert(inline) == "```python\nx = 1\ny = 2\n```\n"


def test_prism_lines_ending_in_br_keep_their_newlines() -> None:
    block = (
        '<pre class="prism-code language-bash"><code><span class="token-line"><span class="token plain">npm i</span><br></span>'
        '<span class="token-line"><span class="token plain" style="display:inline-block"></span><br></span>'
        '<span class="token-line"><span class="token plain">  npm test</span><br></span></code></pre>'
    )
    assert convert(block) == "```bash\nnpm i\n\n  npm test\n```\n"


def test_fence_is_longer_than_any_backtick_run_in_the_code() -> None:
    markdown = convert('<pre><code class="language-markdown">```python\nx\n```\n</code></pre>')
    assert markdown == "````markdown\n```python\nx\n```\n````\n"


def test_inline_code_and_identifiers_are_not_escaped() -> None:
    markdown = convert("<p>Pass <code>exist_ok=True</code> to make_dirs; 2 * 3 = 6 and snake_case_name.</p>")
    assert markdown == "Pass `exist_ok=True` to make_dirs; 2 * 3 = 6 and snake_case_name.\n"


def test_table_with_colspan_and_multiline_cells_keeps_every_row() -> None:
    table = (
        "<table><thead><tr><th>Name</th><th>Notes</th></tr></thead><tbody>"
        "<tr><td>a_b</td><td><p>line one</p><p>line two</p></td></tr>"
        '<tr><td colspan="2">spans both</td></tr>'
        "<tr><td>pipe</td><td><code>a|b</code> or c|d</td></tr></tbody></table>"
    )
    lines = convert(table).strip().split("\n")
    assert len(lines) == 5
    assert lines[0].replace(" ", "") == "|Name|Notes|"
    assert "line one line two" in lines[2]
    assert "spans both" in lines[3]
    assert "a\\|b" in lines[4] and "c\\|d" in lines[4]


def test_table_without_header_uses_its_first_row() -> None:
    lines = (
        convert("<table><tr><td>k</td><td>v</td></tr><tr><td>k2</td><td>v2</td></tr></table>")
        .strip()
        .split("\n")
    )
    assert [line.replace(" ", "") for line in lines] == ["|k|v|", "|---|---|", "|k2|v2|"]


def test_one_row_layout_table_becomes_blocks() -> None:
    markdown = convert(
        "<table><tr><td><ul><li>alpha</li></ul></td><td><ul><li>beta</li></ul></td></tr></table>"
    )
    assert markdown == "- alpha\n\n- beta\n"


@pytest.mark.parametrize(
    ("link", "expected"),
    [
        ('<a href="https://docs.python.org/3/library/stdtypes.html#str"></a>', "str"),
        ('<a href="x.html"><img src="icon.png"></a>', "str"),
        ('<a href="x.html"><svg><path d="M0"/></svg></a>', "str"),
        ('<a href="x.html"> </a>', "str"),
    ],
)
def test_empty_links_disappear(link: str, expected: str) -> None:
    markdown = convert(f"<p>str{link}</p>")
    assert markdown == f"{expected}\n"
    assert "[](" not in markdown


def test_links_are_absolute_and_lose_their_title() -> None:
    markdown = convert(
        '<p><a href="../api.html#x" title="(in Python v3.12)">api</a>, <a href="#local">here</a>, '
        '<a href="javascript:void(0)">menu</a>, <a href="https://other.org/">other</a></p>'
    )
    assert markdown == (
        "[api](https://docs.example.org/api.html#x), [here](https://docs.example.org/guide/page.html#local), "
        "menu, [other](https://other.org/)\n"
    )


def test_base_href_is_respected() -> None:
    html = '<html><head><base href="https://cdn.example.org/v2/"></head><body><main><p><a href="a.html">a</a></p></main></body></html>'
    assert extract_html(html, URL).markdown == "[a](https://cdn.example.org/v2/a.html)\n"


def test_images_need_alt_text() -> None:
    markdown = convert(
        '<p>See <img src="../img/flow.png" alt="Request flow"> and <img src="spacer.gif"> <img src="x.png" alt="">.</p>'
    )
    assert markdown == "See ![Request flow](https://docs.example.org/img/flow.png) and .\n"


def test_admonition_text_is_kept_in_a_blockquote() -> None:
    markdown = convert(
        '<div class="admonition note"><p class="admonition-title">Note</p><p>First.</p><p>Second.</p></div><p>After.</p>'
    )
    assert markdown == "> **Note**\n>\n> First.\n>\n> Second.\n\nAfter.\n"


def test_buttons_forms_scripts_and_toc_are_removed() -> None:
    markdown = convert(
        '<div class="toc"><ul><li><a href="#a">Section A</a></li></ul></div><p>Kept text.</p>'
        "<button>Copy</button><form><input value='q'></form><script>alert(1)</script><noscript>Enable JS</noscript>"
        '<iframe src="x"></iframe><div class="cookie-banner">We use cookies</div>'
        '<a href="https://github.com/x/y/edit/main/docs/page.md">Edit on GitHub</a>'
    )
    assert markdown == "Kept text.\n"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("a  \r\nb\t\r\n", "a\nb\n"),
        ("a\n\n\n\nb\n\n\n", "a\n\nb\n"),
        ("\n\n# T\ntext\n> quote\nlazy\n", "# T\n\ntext\n\n> quote\n\nlazy\n"),
        ("text\n```py\nx = 1   \n\n\n\ny\n```\nafter", "text\n\n```py\nx = 1   \n\n\n\ny\n```\n\nafter\n"),
        ("> a\n> ```\n> x  \n> ```\n> b\n", "> a\n> ```\n> x  \n> ```\n> b\n"),
        ("  \n\n", ""),
    ],
)
def test_normalize_markdown(raw: str, expected: str) -> None:
    assert normalize_markdown(raw) == expected

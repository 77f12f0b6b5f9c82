"""Markdown → HTML for the web UI: anchors, highlighting, citation links, snippets, and the sanitiser."""

from __future__ import annotations

import re

import pytest

from docshelf.server.render import (
    highlight_css,
    plain_text,
    query_terms,
    render_answer,
    render_markdown,
    sanitize,
    snippet,
)
from inert import active_parts


@pytest.mark.parametrize(("markdown", "html"), [
    ("## Configuration {#configuration}", '<h2 id="configuration">Configuration</h2>'),
    ("#### widgets.Registry.lookup(name) {#widgets.Registry.lookup}",
     '<h4 id="widgets.Registry.lookup">widgets.Registry.lookup(name)</h4>'),
    ("### Options {#opts .wide key=value}", '<h3 id="opts">Options</h3>'),
    ("## No anchor", "<h2>No anchor</h2>"),
    ("Text with {#not-a-heading} braces", "<p>Text with {#not-a-heading} braces</p>"),
])
def test_heading_anchors_become_ids(markdown: str, html: str) -> None:
    assert render_markdown(markdown).strip() == html


def test_code_is_highlighted_with_pygments_classes() -> None:
    html = render_markdown("```python\ndef lookup(name):\n    return registry[name]\n```")
    assert '<pre class="highlight"><code>' in html
    assert '<span class="k">def</span>' in html and '<span class="nf">lookup</span>' in html


def test_unknown_language_is_plain_escaped_code() -> None:
    html = render_markdown("```no-such-language\n<b>x</b> & y\n```")
    assert html.strip() == "<pre><code>&lt;b&gt;x&lt;/b&gt; &amp; y\n</code></pre>"


def test_table_alignment_becomes_classes_not_style() -> None:
    html = render_markdown("| a | b | c |\n|:--|:-:|--:|\n| 1 | 2 | 3 |")
    assert '<td class="align-left">1</td>' in html and '<td class="align-right">3</td>' in html
    assert '<th class="align-center">b</th>' in html and "style" not in html


def test_highlight_css_has_light_and_dark_themes() -> None:
    css = highlight_css()
    light, dark = css.split("@media (prefers-color-scheme: dark) {")
    assert re.search(r"^\.highlight \.k \{ color: #[0-9A-Fa-f]+", light, re.M)
    assert re.search(r"^\.highlight \.k \{ color: #[0-9A-Fa-f]+", dark, re.M)
    assert css.count("{") == css.count("}") and "[" not in css


HOSTILE = [
    "<script>window.__pwned = 1</script>",
    "<img src=x onerror=\"window.__pwned = 1\">",
    "<a href=\"javascript:window.__pwned = 1\">x</a>",
    "<a href=\"JaVaScRiPt:window.__pwned = 1\">x</a>",
    "<a href=\"&#106;avascript:window.__pwned = 1\">x</a>",
    "<iframe src=\"javascript:window.__pwned = 1\"></iframe>",
    "<svg onload=\"window.__pwned = 1\"><script>window.__pwned = 1</script></svg>",
    "<style>body { display: none }</style>",
    "<object data=\"x.swf\"></object><embed src=\"x.swf\">",
    "<form action=\"/api/sources\"><button formaction=\"javascript:1\">go</button></form>",
    "<div onclick=\"window.__pwned = 1\" style=\"position:fixed\">x</div>",
    "<a href=\"data:text/html,<script>window.__pwned = 1</script>\">x</a>",
    "<meta http-equiv=\"refresh\" content=\"0; url=javascript:1\"><base href=\"https://evil.example/\">",
    "<details open ontoggle=\"window.__pwned = 1\"><summary>s</summary></details>",
]


@pytest.mark.parametrize("html", HOSTILE)
def test_sanitiser_leaves_nothing_that_runs(html: str) -> None:
    cleaned = sanitize(html)
    assert active_parts(cleaned) == [], cleaned
    for banned in ("<script", "javascript", "onerror", "onload", "onclick", "ontoggle", "<iframe", "<svg",
                   "<style", "<object", "<embed", "<form", "formaction", "style=", "<meta", "<base", "data:text"):
        assert banned not in cleaned.lower(), (banned, cleaned)


@pytest.mark.parametrize("html", HOSTILE)
def test_markup_in_stored_markdown_is_shown_as_text(html: str) -> None:
    rendered = str(render_markdown(f"Prose before.\n\n{html}\n\nProse after."))
    assert active_parts(rendered) == [], rendered
    first_tag = re.match(r"<(\w+)", html).group(1)  # type: ignore[union-attr]
    assert f"&lt;{first_tag}" in rendered  # the page's text, quoted as the page showed it


def test_placeholders_in_prose_survive() -> None:
    html = render_markdown("Connect with postgresql://<user>:<password>@<host>/<dbname> and drop <tablename>.")
    assert "postgresql://&lt;user&gt;:&lt;password&gt;@&lt;host&gt;/&lt;dbname&gt;" in html
    assert "&lt;tablename&gt;" in html


def test_sanitiser_keeps_safe_markup_and_adds_noopener() -> None:
    html = sanitize('<p>A <a href="https://docs.example.org/x#y" title="t">link</a>, <kbd>Ctrl</kbd>, '
                    '<img src="https://docs.example.org/a.png" alt="diagram"> and <code>code</code>.</p>')
    assert '<a href="https://docs.example.org/x#y" title="t" rel="noopener noreferrer">link</a>' in html
    assert '<kbd>Ctrl</kbd>' in html and '<img src="https://docs.example.org/a.png" alt="diagram">' in html


def test_sanitiser_drops_classes_our_css_does_not_expect() -> None:
    assert sanitize('<div class="skip-link danger">x</div><span class="k evil">y</span>') == (
        '<div>x</div><span class="k">y</span>')


def test_markdown_links_with_script_urls_are_not_links() -> None:
    html = render_markdown("[click](javascript:alert(1)) and [fine](https://example.org/)")
    assert "javascript:alert(1)" not in html.replace("[click](javascript:alert(1))", "")
    assert "<a " not in html.split("and")[0]
    assert '<a href="https://example.org/" rel="noopener noreferrer">fine</a>' in html


def test_answer_citation_markers_link_to_their_citation() -> None:
    text = "**[1]** Settings — <https://x.org/c.html#s>\n\nSee [2], not [3] or `items[1]`."
    html = render_answer(text, ["https://x.org/c.html#s", "https://x.org/d.html"])
    assert '<strong><a href="#cite-1" class="cite-ref" rel="noopener noreferrer">[1]</a></strong>' in html
    assert '<a href="#cite-2" class="cite-ref"' in html
    assert "[3]" in html and "#cite-3" not in html  # no such citation
    assert "<code>items[1]</code>" in html  # code is never rewritten


def test_links_a_model_cites_get_their_number() -> None:
    urls = ["https://x.org/c.html#cache ttl", "https://x.org/d.html"]
    text = ("Set it ([settings](<https://x.org/c.html#cache ttl>)); see [d](https://x.org/d.html), "
            "[d again](https://x.org/d.html) and [uncited](https://x.org/e.html).")
    html = render_answer(text, urls)
    assert ('<a href="https://x.org/c.html#cache%20ttl" rel="noopener noreferrer">settings</a>'
            '<sup class="cite"><a href="#cite-1" class="cite-ref" rel="noopener noreferrer">[1]</a></sup>'
            ) in html
    assert html.count('href="#cite-2"') == 2 and "#cite-3" not in html


def test_answer_without_citations_keeps_brackets() -> None:
    assert render_answer("See [1].", []).strip() == "<p>See [1].</p>"


def test_query_terms_drop_stop_words_and_sort_longest_first() -> None:
    assert query_terms("How do I set the WIDGETS_CACHE_TTL cache?") == ["widgets_cache_ttl", "cache", "set"]


def test_plain_text_drops_markdown_syntax() -> None:
    markdown = ("## Setup {#setup}\n\nUse [the CLI](https://x.org/cli) and **bold** `code`.\n\n"
                "```bash\nrun it\n```")
    assert plain_text(markdown) == "Setup Use the CLI and bold code . run it"


def test_plain_text_drops_table_rules_but_keeps_hyphenated_words() -> None:
    table = "| Setting | Default |\n|:--------|--------:|\n| cache-ttl | 300 |\n\n---\n\nEnd."
    assert plain_text(table) == "Setting Default cache-ttl 300 End."


def test_snippet_marks_query_terms_case_insensitively() -> None:
    html = snippet("The `WIDGETS_CACHE_TTL` setting sets the cache lifetime.", "widgets_cache_ttl Cache")
    assert str(html) == ("The <mark>WIDGETS_CACHE_TTL</mark> setting sets the <mark>cache</mark> lifetime.")


def test_snippet_escapes_chunk_text() -> None:
    html = str(snippet('Never write <script>alert("x")</script> in a widget.', "widget"))
    assert "<script>" not in html and "&lt;script&gt;" in html and "<mark>widget</mark>" in html


def test_snippet_windows_around_the_densest_matches() -> None:
    text = "Intro words. " * 40 + "The quiescence interval of the gearbox pipeline." + " Outro words." * 40
    html = str(snippet(text, "gearbox pipeline quiescence", width=120))
    assert html.startswith("… ") and html.endswith(" …")
    assert "<mark>quiescence</mark> interval of the <mark>gearbox</mark> <mark>pipeline</mark>" in html
    assert len(re.sub(r"</?mark>", "", html)) < 130


def test_snippet_without_matches_is_the_start_of_the_chunk() -> None:
    assert str(snippet("Alpha beta gamma.", "zeta")) == "Alpha beta gamma."

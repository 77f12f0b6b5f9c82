"""Section anchors: every heading keeps the id a citation points at, written as `{#id}`."""

from __future__ import annotations

import pytest

from docshelf.extract import extract_html

from .helpers import extract_fixture

URL = "https://docs.example.org/guide/page.html"


def page(body: str) -> str:
    """Return a minimal HTML page whose main content (Sphinx's shape) is `body`."""
    return f'<html><head><title>T</title></head><body><div role="main">{body}</div></body></html>'


def test_sphinx_api_entry_becomes_a_heading_that_keeps_its_id() -> None:
    markdown = extract_fixture("sphinx/api.html").markdown
    lines = markdown.split("\n")
    assert "### class widgets.Registry(namespace='default') {#widgets.Registry}" in lines
    # A method inside a class: one level below the class, with its fully qualified name from the id.
    assert "#### widgets.Registry.lookup(name, default=None) {#widgets.Registry.lookup}" in lines
    assert "### exception widgets.FrobnicationError(path, message) {#widgets.FrobnicationError}" in lines
    # The entry's body follows its heading, code included.
    after = markdown.split("{#widgets.Registry.lookup}", 1)[1]
    assert after.lstrip().startswith("Return the widget class registered under `name`.")
    assert '```python\ncard = registry.lookup("fleet.server_card")' in after


def test_api_entry_level_follows_the_section_and_caps_at_h6() -> None:
    html = page(
        '<section id="deep"><h5>Deep<a class="headerlink" href="#deep">¶</a></h5>'
        '<dl class="py class"><dt class="sig sig-object py" id="m.C"><span class="sig-prename descclassname">'
        '<span class="pre">m.</span></span><span class="sig-name descname"><span class="pre">C</span></span></dt>'
        '<dd><p>Class.</p><dl class="py method"><dt class="sig sig-object py" id="m.C.run">'
        '<span class="sig-name descname"><span class="pre">run</span></span><span class="sig-paren">(</span>'
        '<em class="sig-param"><span class="n"><span class="pre">fast_mode</span></span></em>'
        '<span class="sig-paren">)</span><a class="headerlink" href="#m.C.run">¶</a></dt>'
        "<dd><p>Run it.</p></dd></dl></dd></dl></section>"
    )
    lines = extract_html(html, URL).markdown.split("\n")
    assert "##### Deep {#deep}" in lines
    assert "###### m.C {#m.C}" in lines
    assert "###### m.C.run(fast_mode) {#m.C.run}" in lines


@pytest.mark.parametrize(
    ("heading_html", "expected"),
    [
        ('<h2 id="own">Own id</h2>', "## Own id {#own}"),
        (
            '<section id="from-section"><h2>From section</h2><p>x</p></section>',
            "## From section {#from-section}",
        ),
        ('<div class="section" id="old-sphinx"><h2>Old Sphinx</h2></div>', "## Old Sphinx {#old-sphinx}"),
        ('<h2>Permalink<a class="headerlink" href="#from-link">¶</a></h2>', "## Permalink {#from-link}"),
        ('<h2><a name="named"></a>Named anchor</h2>', "## Named anchor {#named}"),
        ("<h2>No anchor at all</h2>", "## No anchor at all"),
    ],
)
def test_heading_anchor_sources(heading_html: str, expected: str) -> None:
    markdown = extract_html(page(heading_html + "<p>Body text.</p>"), URL).markdown
    assert expected in markdown.split("\n")


def test_nested_heading_does_not_take_its_parent_sections_id() -> None:
    html = page('<section id="outer"><h2>Outer</h2><p>a</p><h3>Inner without section</h3><p>b</p></section>')
    lines = extract_html(html, URL).markdown.split("\n")
    assert "## Outer {#outer}" in lines
    assert "### Inner without section" in lines


def test_heading_left_empty_by_cleanup_is_dropped() -> None:
    html = page('<h2 id="x"><a class="headerlink" href="#x">¶</a></h2><p>Only text.</p>')
    assert extract_html(html, URL).markdown == "Only text.\n"

"""Main-content detection: the registry, each generator's shape, and the generic fallbacks."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from selectolax.lexbor import LexborHTMLParser

from docshelf.extract import DEFAULT_DETECTORS, SelectorDetector, detectors, extract_html, register_detector
from docshelf.extract.main_content import find_main_content

from .helpers import SITES

URL = "https://docs.example.org/page/"


@pytest.fixture
def restore_registry() -> Iterator[None]:
    """Put the default registry back after a test that registers a detector."""
    yield
    from docshelf.extract import main_content

    main_content._registry[:] = list(DEFAULT_DETECTORS)


def detected(html: str) -> str:
    """Return the name of the detector that finds the main content of `html`."""
    found = find_main_content(LexborHTMLParser(html))
    assert found is not None
    return found[0]


@pytest.mark.parametrize(
    ("page", "detector"),
    [
        ("sphinx/index.html", "sphinx"),
        ("mkdocs/index.html", "mkdocs"),
        ("material/index.html", "mkdocs-material"),
        ("docusaurus/index.html", "docusaurus"),
    ],
)
def test_fixture_sites_are_detected_by_their_generator(page: str, detector: str) -> None:
    assert detected((SITES / page).read_text(encoding="utf-8")) == detector


def test_default_order_puts_the_fallbacks_last() -> None:
    assert [d.name for d in detectors()] == [
        "mkdocs-material",
        "docusaurus",
        "mkdocs",
        "sphinx",
        "generic",
        "densest-block",
    ]


def test_registered_detector_runs_before_the_fallbacks(restore_registry: None) -> None:
    register_detector(SelectorDetector("hugo-book", ("div.book-page .markdown",)))
    assert [d.name for d in detectors()][-3:] == ["hugo-book", "generic", "densest-block"]
    html = '<body><main><div class="book-page"><div class="markdown"><p>Book text.</p></div><p>Other.</p></div></main></body>'
    assert detected(html) == "hugo-book"
    assert extract_html(html, URL).markdown == "Book text.\n"


def test_registering_an_existing_name_replaces_it(restore_registry: None) -> None:
    register_detector(SelectorDetector("sphinx", ("div.document",)))
    assert [d.name for d in detectors()].count("sphinx") == 1
    assert detectors()[3] == SelectorDetector("sphinx", ("div.document",))


def test_readthedocs_theme() -> None:
    html = """<body><div class="wy-grid-for-nav"><nav class="wy-nav-side"><div class="wy-menu">Menu</div></nav>
      <section class="wy-nav-content-wrap"><div class="wy-nav-content"><div class="rst-content">
      <div role="navigation" aria-label="breadcrumbs navigation"><ul class="wy-breadcrumbs"><li>Docs</li></ul></div>
      <div role="main" class="document" itemscope="itemscope"><div class="section" itemprop="articleBody">
      <h1 id="setup">Setup</h1><p>Install the sprocket.</p></div></div>
      <footer><div class="rst-footer-buttons"><a href="next/">Next</a></div><p>Built with MkDocs</p></footer>
      </div></div></section></div></body>"""
    assert detected(html) == "mkdocs"
    assert extract_html(html, URL).markdown == "# Setup {#setup}\n\nInstall the sprocket.\n"


@pytest.mark.parametrize(
    "wrapper",
    [
        '<article role="main" class="bd-article">{}</article>',  # pydata-sphinx-theme
        '<article role="main" id="furo-main-content">{}</article>',  # furo
        '<div class="body">{}</div>',
    ],
)
def test_other_sphinx_themes(wrapper: str) -> None:
    html = f"<body><nav>Menu</nav>{wrapper.format('<p>Theme body text.</p>')}<footer>Footer</footer></body>"
    assert extract_html(html, URL).markdown == "Theme body text.\n"


def test_generic_main_element() -> None:
    html = "<body><header><a href='/'>Site</a></header><main><p>Main text.</p></main><aside class='sidebar'>Ads</aside></body>"
    assert detected(html) == "generic"
    assert extract_html(html, URL).markdown == "Main text.\n"


def test_densest_block_on_a_hand_written_page() -> None:
    prose = (
        "<p>SQLite is a small, fast, self-contained SQL database engine used in many applications.</p>" * 3
    )
    html = f"""<body><div class="menu"><a href="index.html">Home</a> <a href="docs.html">Docs</a></div>
      <div id="left"><a href="a.html">Alpha link</a> <a href="b.html">Beta link</a> <a href="c.html">Gamma</a></div>
      <div id="content"><div class="inner"><h2>Overview</h2>{prose}</div></div></body>"""
    assert detected(html) == "densest-block"
    markdown = extract_html(html, URL).markdown
    assert markdown.startswith("## Overview\n\nSQLite is a small")
    assert "Alpha link" not in markdown


def test_densest_block_keeps_prose_beside_a_long_code_listing() -> None:
    # A hand-written page whose one code listing outweighs its prose (SQLite's np1queryprob.html):
    # the descent must stay at the block holding both, not fall into the listing's wrapper.
    listing = "\n".join(f"SELECT value FROM config WHERE name='key{i}';" for i in range(200))
    html = f"""<body><div class="menu"><a href="index.html">Home</a></div>
      <div class="fancy"><h1 id="summary">1. Executive Summary</h1>
      <p>Two hundred SQL statements per page are not a problem for an embedded database engine.</p>
      <div class="codeblock"><pre>{listing}</pre></div>
      <p>Each statement is a function call, not a message round trip.</p></div></body>"""
    markdown = extract_html(html, URL).markdown
    assert "Two hundred SQL statements" in markdown and "not a message round trip" in markdown
    assert "key199" in markdown


def test_densest_block_keeps_the_sections_beside_a_long_table() -> None:
    # SQLite's opcode.html: the narrative sections sit in <body>, the opcode table (most of the text) in a div.
    rows = "".join(f"<tr><td>Op{i}</td><td>Moves register P{i} into register P{i + 1} and jumps.</td></tr>"
                   for i in range(80))
    html = f"""<body><div class="menu"><a href="index.html">Home</a></div>
      <h1 id="summary">1. Executive Summary</h1><p>The bytecode engine runs one program per statement.</p>
      <h2 id="registers">2.1. Registers</h2><p>Every program has a fixed number of registers.</p>
      <h1 id="opcodes">2. The Opcodes</h1><div class="optab"><table>{rows}</table></div></body>"""
    markdown = extract_html(html, URL).markdown
    assert "# 1. Executive Summary {#summary}" in markdown
    assert "every program has a fixed number of registers" in markdown.lower()
    assert "Op79" in markdown


def test_densest_block_keeps_the_title_and_intro_above_a_long_section() -> None:
    # Django's own theme: one section holds most of the text, the page's h1 and intro sit above it,
    # and the site header's h1 is only a link.
    long_section = "<p>Every management command is a class named Command that extends BaseCommand.</p>" * 12
    html = f"""<body><div id="hd"><h1><a href="index.html">Widgets 3.2 documentation</a></h1>
      <a href="genindex.html">Index</a></div>
      <div id="bd"><div class="section" id="commands"><h1>Writing custom commands</h1>
      <p>Applications can register their own actions with the command line tool.</p>
      <div class="section" id="testing"><h2>Testing</h2>{long_section}</div>
      <div class="section" id="api"><h2>Command objects</h2><p>The base class of all commands.</p></div>
      </div></div></body>"""
    markdown = extract_html(html, URL).markdown
    assert markdown.startswith("# Writing custom commands {#commands}\n\nApplications can register")
    assert "Widgets 3.2 documentation" not in markdown
    assert "## Command objects" in markdown

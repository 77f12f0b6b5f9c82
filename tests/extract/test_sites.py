"""Each fixture site, as its generator shapes it: the article in, the chrome out, the rules kept."""

from __future__ import annotations

import re

import pytest

from .helpers import BASE, extract_fixture, fenced_blocks, fixture_html, prose_lines, raw_code_blocks

# page → (title, a sentence of the article, headings that must be there with their anchors)
ARTICLES = {
    "sphinx/index.html": (
        "Widgets",
        "The distinctive idea behind Widgets is **frobnication**",
        ["# Widgets {#widgets}", "## Installation {#installation}", "## Project status {#project-status}"],
    ),
    "sphinx/quickstart.html": (
        "Quickstart",
        "The gearbox pipeline runs the gears in order",
        ["## The gearbox pipeline {#the-gearbox-pipeline}", "### A complete example {#a-complete-example}"],
    ),
    "sphinx/api.html": (
        "API reference",
        "Tessellation is how dashboards lay out many small",
        ["# API reference {#module-widgets}", "## Registry {#registry}"],
    ),
    "sphinx/configuration.html": (
        "Configuration",
        "Later sources never\noverride earlier ones",
        [
            "## Settings reference {#settings-reference}",
            "### The quiescence interval {#the-quiescence-interval}",
        ],
    ),
    "mkdocs/index.html": (
        "widgetctl",
        "**hyperloom** registry",
        ["# widgetctl {#widgetctl}", "## A five-minute tour {#a-five-minute-tour}"],
    ),
    "mkdocs/commands/index.html": (
        "Commands",
        "The rule **WL017 orphaned-slot** is the\nmost common",
        ["## widgetctl lint {#widgetctl-lint}", "### Lint rules {#lint-rules}"],
    ),
    "mkdocs/configuration/index.html": (
        "Configuration",
        "Run `widgetctl doctor` to print the resolved configuration.",
        ["## Project file {#project-file}", "## Precedence {#precedence-rules}"],
    ),
    "mkdocs/plugins/index.html": (
        "Plugins",
        "The log shows the **sandcastle handshake**",
        ["## The plugin protocol {#the-plugin-protocol}"],
    ),
    "material/index.html": (
        "Widgets Cloud",
        "the same **render fingerprint**",
        ["# Widgets Cloud {#widgets-cloud}", "## Base URL and versioning {#base-url-and-versioning}"],
    ),
    "material/api/authentication/index.html": (
        "Authentication",
        "which makes the **quartermaster audit**",
        ["## API keys {#api-keys}", "### Sending the key {#sending-the-key}"],
    ),
    "material/api/rate-limits/index.html": (
        "Rate limits",
        "**thundering-herd backoff**",
        ["## Limits per plan {#limits-per-plan}", "## Handling 429 responses {#handling-429-responses}"],
    ),
    "material/api/webhooks/index.html": (
        "Webhooks",
        "this **replay window** stops an attacker",
        ["## A complete receiver {#a-complete-receiver}", "## Retries and ordering {#retries-and-ordering}"],
    ),
    "docusaurus/index.html": (
        "Introduction",
        "the **kaleidoscope layout**, a responsive grid",
        ["# Introduction", "### Props are the contract {#props-are-the-contract}"],
    ),
    "docusaurus/installation.html": (
        "Installation",
        "the **moonwalk build** that produced CommonJS files",
        ["## Add the package {#add-the-package}", "## Peer dependencies {#peer-dependencies}"],
    ),
    "docusaurus/components.html": (
        "Components",
        "the **heliotrope palette** was designed around",
        ["## StatusCard {#statuscard}", "### Props {#statuscard-props}"],
    ),
    "docusaurus/theming.html": (
        "Theming",
        "the **chiaroscuro mode**",
        ["## Design tokens {#design-tokens}", "## A complete theme {#a-complete-theme}"],
    ),
}

# Text of each generator's chrome: navigation, sidebars, search, footers, pagers, edit links.
CHROME = {
    "sphinx": ["Quick search", "Related Topics", "Powered by", "Alabaster", "©2024", "Navigation", "¶"],
    "mkdocs": [
        "Edit on GitHub",
        "Documentation built with",
        "From here you can search",
        "Keyboard Shortcuts",
        "Search",
        "Previous",
        "Copyright",
        "¶",
    ],
    "material": [
        "Skip to content",
        "Initializing search",
        "Was this page helpful",
        "Thanks for your feedback",
        "Material for MkDocs",
        "Back to top",
        "Table of contents",
        "Edit this page",
        "example/widgets-cloud",
        "Copyright",
        "Previous",
        "¶",
    ],
    "docusaurus": [
        "Skip to main content",
        "Edit this page",
        "On this page",
        "Built with Docusaurus",
        "Discord",
        "Copy code",
        "Direct link to",
        "Widgets UI Logo",
        "Previous",
        "Search",
        "\u200b",
    ],
}


def test_every_fixture_page_is_covered(any_page: str) -> None:
    assert any_page in ARTICLES


@pytest.mark.parametrize("page", sorted(ARTICLES))
def test_title_article_and_anchored_headings(page: str) -> None:
    title, sentence, headings = ARTICLES[page]
    extracted = extract_fixture(page)
    assert extracted.title == title
    assert sentence in extracted.markdown
    lines = extracted.markdown.split("\n")
    for heading in headings:
        assert heading in lines


@pytest.mark.parametrize("page", sorted(ARTICLES))
def test_no_chrome(page: str) -> None:
    markdown = extract_fixture(page).markdown
    for text in CHROME[page.split("/")[0]]:
        assert text not in markdown, text


def test_markdown_rules_hold_on_every_page(any_page: str) -> None:
    markdown = extract_fixture(any_page).markdown
    prose = prose_lines(markdown)
    assert "[](" not in markdown
    assert "\\_" not in markdown
    assert "\r" not in markdown
    assert markdown.endswith("\n") and not markdown.endswith("\n\n")
    assert not any(line != line.rstrip() for line in prose), "trailing spaces outside code"
    assert "\n\n\n" not in "\n".join(prose)


def test_every_heading_carries_its_anchor(any_page: str) -> None:
    """Every heading of the page with an id keeps it (Docusaurus' <h1> has none)."""
    markdown = extract_fixture(any_page).markdown
    headings = [line for line in prose_lines(markdown) if re.match(r"#{1,6} ", line)]
    assert headings
    unanchored = [h for h in headings if not re.search(r" \{#[^}\s]+\}$", h)]
    assert unanchored in ([], [headings[0]] if any_page.startswith("docusaurus/") else [])


def test_links_are_absolute(any_page: str) -> None:
    markdown = extract_fixture(any_page).markdown
    targets = re.findall(r"\]\(([^)\s]+)", markdown)
    assert all(re.match(r"https?://", target) for target in targets), targets


def test_relative_links_resolve_against_the_page_url() -> None:
    markdown = extract_fixture("mkdocs/plugins/index.html").markdown
    assert "[configuration](http://127.0.0.1:8000/mkdocs/configuration/#project-file)" in markdown
    markdown = extract_fixture("sphinx/quickstart.html").markdown
    assert f"[`widgets.Widget`]({BASE}sphinx/api.html#widgets.Widget)" in markdown


@pytest.mark.parametrize("page", sorted(ARTICLES))
def test_code_blocks_are_fenced_with_language_and_exact(page: str) -> None:
    fences = fenced_blocks(extract_fixture(page).markdown)
    expected = raw_code_blocks(fixture_html(page))
    assert [code for _, code in fences] == expected
    assert all(language for language, _ in fences)


@pytest.mark.parametrize(
    ("page", "language", "first_line", "lines"),
    [
        ("sphinx/quickstart.html", "python", '"""Render a status page for the build fleet."""', 82),
        ("mkdocs/configuration/index.html", "toml", "# widgetctl.toml -- project configuration", 63),
        (
            "material/api/webhooks/index.html",
            "python",
            '"""Minimal Widgets Cloud webhook receiver (standard library only)."""',
            66,
        ),
        ("docusaurus/theming.html", "tsx", 'import { createTheme, ThemeProvider } from "@widgets/ui";', 63),
    ],
)
def test_long_code_block_keeps_every_line(page: str, language: str, first_line: str, lines: int) -> None:
    fences = fenced_blocks(extract_fixture(page).markdown)
    language_found, code = max(fences, key=lambda fence: len(fence[1]))
    assert language_found == language
    assert code.split("\n")[0] == first_line
    assert len(code.split("\n")) == lines


def test_code_indentation_and_blank_lines_survive() -> None:
    fences = {
        code.split("\n")[0]: code
        for _, code in fenced_blocks(extract_fixture("sphinx/quickstart.html").markdown)
    }
    code = fences['"""Render a status page for the build fleet."""']
    assert "\n    cards = [card(name=n, state=s, load=l) for n, (s, l) in SERVERS.items()]\n" in code
    assert '\n\n\n@frobnicator("load")\n' in code


@pytest.mark.parametrize(
    ("page", "header", "rows"),
    [
        ("sphinx/configuration.html", "| Setting | Environment variable | Default | Meaning |", 10),
        ("mkdocs/commands/index.html", "| Command | Purpose | Typical use |", 9),
        ("material/api/rate-limits/index.html", "| Plan | Requests per minute |", 9),
        ("docusaurus/components.html", "| Prop | Type | Default | Description |", 10),
    ],
)
def test_table_becomes_pipe_table_with_every_row(page: str, header: str, rows: int) -> None:
    markdown = extract_fixture(page).markdown
    lines = markdown.split("\n")
    start = next(i for i, line in enumerate(lines) if re.sub(r" +", " ", line).startswith(header))
    table = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        table.append(line)
    assert re.fullmatch(r"\|( *-+ *\|)+", table[1].replace(":", "")), "delimiter row"
    assert len(table) - 2 == rows


def test_pipe_inside_a_cell_is_escaped() -> None:
    sphinx = extract_fixture("sphinx/configuration.html").markdown
    assert "Deepest widget tree the layout gear accepts \\| deeper trees raise an error." in sphinx
    docusaurus = extract_fixture("docusaurus/components.html").markdown
    assert "Content pinned to the bottom edge \\| e.g. a timestamp." in docusaurus


@pytest.mark.parametrize(
    ("page", "title", "text"),
    [
        ("sphinx/quickstart.html", "Warning", "Registering two classes under the same name raises"),
        ("sphinx/configuration.html", "Where settings are read", "Settings are read from `pyproject.toml`"),
        ("mkdocs/index.html", "Shell completion", "to\n> enable tab completion"),
        ("material/api/webhooks/index.html", "Use the raw body", "Verify the signature over the exact bytes"),
        (
            "material/api/authentication/index.html",
            "Why PKCE even for confidential clients?",
            "PKCE protects",
        ),
        ("docusaurus/components.html", "Tip", "Set `priority` rather than reordering JSX"),
        ("docusaurus/installation.html", "Troubleshooting a blank page", "A blank page with the error"),
    ],
)
def test_admonition_is_a_blockquote_with_bold_title(page: str, title: str, text: str) -> None:
    markdown = extract_fixture(page).markdown
    assert f"> **{title}**\n>\n> " in markdown
    assert text in markdown


def test_tabs_keep_every_panel_under_its_label() -> None:
    markdown = extract_fixture("docusaurus/installation.html").markdown
    for tool, command in (("npm", "npm install"), ("yarn", "yarn add"), ("pnpm", "pnpm add")):
        assert f"**{tool}**\n\n```bash\n{command} @widgets/ui\n```" in markdown
    markdown = extract_fixture("material/api/authentication/index.html").markdown
    assert "**curl**\n\n```bash\ncurl https://api.widgets.example" in markdown
    assert "**Python**\n\n```python\nimport os" in markdown


def test_definition_list_terms_are_bold() -> None:
    markdown = extract_fixture("mkdocs/configuration/index.html").markdown
    assert "**Environment variables**\n\nOverride both files; handy in CI." in markdown
    markdown = extract_fixture("material/index.html").markdown
    assert "**Render job**\n\nOne request to turn a widget tree into output." in markdown


def test_images_keep_alt_text_and_lose_the_rest() -> None:
    markdown = extract_fixture("mkdocs/index.html").markdown
    assert "![Terminal preview of a widget tree](http://127.0.0.1:8000/mkdocs/img/preview.png)" in markdown
    assert "spacer.gif" not in markdown
    markdown = extract_fixture("docusaurus/theming.html").markdown
    assert "![Diagram of the spacing tokens](http://127.0.0.1:8000/docusaurus/img/tokens.png)" in markdown


def test_code_block_title_stays_next_to_its_code() -> None:
    markdown = extract_fixture("material/api/webhooks/index.html").markdown
    assert "receiver.py\n\n```python\n" in markdown
    markdown = extract_fixture("docusaurus/theming.html").markdown
    assert "acme-theme.tsx\n\n```tsx\n" in markdown

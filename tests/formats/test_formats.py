"""Each documentation format converted to the Markdown the HTML path produces: headings with anchors, fenced code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from docshelf.errors import ExtractError
from docshelf.extract import extract_document
from docshelf.extract.formats.notebook import MAX_OUTPUT_LINES
from docshelf.extract.formats.openapi import openapi_pages, tag_url

FORMATS = Path(__file__).parents[1] / "fixtures" / "formats"
URL = "file:///docs/"


def read(name: str) -> str:
    return (FORMATS / name).read_text(encoding="utf-8")


def headings(markdown: str) -> list[str]:
    return [line for line in markdown.splitlines() if line.startswith("#")]


def fences(markdown: str) -> list[str]:
    return re.findall(r"^```(\w*)$", markdown, re.MULTILINE)[::2]


def test_rst_headings_code_admonitions_tables_and_sphinx_markup() -> None:
    extracted = extract_document(read("guide.rst"), "rst", URL + "guide.rst")
    md = extracted.markdown
    assert extracted.title == "Widgetry guide"
    assert headings(md) == ["# Widgetry guide {#widgetry-guide}", "## Installing {#installing}",
                            "## Building a widget {#building-a-widget}", "## Sizes {#sizes}"]
    assert fences(md) == ["bash", "python"]  # `.. code-block:: bash`, then `::` in the `.. highlight::` language
    assert "pip install widgetry" in md and 'widget = build("sprocket", teeth=12)' in md
    # Sphinx roles: code references as inline code (`~` shortens), prose references as their title.
    assert "Call `build` or read the tutorial" in md and "`widgetry.Widget` is the class" in md
    assert "> **Note**" in md and "`widget.size` cannot be assigned" in md
    # autoclass keeps its signature and body; versionadded its version and text; toctree leaves nothing.
    assert "`widgetry.Widget(name, size)`" in md and "Its sprocket count is fixed" in md
    assert "`versionadded 2.1`" in md and "argument" in md
    assert "tutorial\napi" not in md and "maxdepth" not in md
    assert re.search(r"\| small +\| 8 +\|", md)


def test_broken_rst_degrades_to_text_and_loses_no_paragraph() -> None:
    md = extract_document(read("broken.rst"), "rst", URL + "broken.rst").markdown
    for text in ("An unknown `role`", "Content of the unknown directive survives.", "The last paragraph is still here.",
                 "unclosed emphasis"):
        assert text in md
    assert "System Message" not in md and "ERROR" not in md


def test_notebook_cells_code_in_kernel_language_and_short_outputs() -> None:
    extracted = extract_document(read("tour.ipynb"), "notebook", URL + "tour.ipynb")
    md = extracted.markdown
    assert extracted.title == "A tour of Widgetry"
    assert headings(md) == ["# A tour of Widgetry {#A-tour-of-Widgetry}", "## Plotting the teeth {#Plotting-the-teeth}"]
    assert fences(md) == ["python", "text", "python", "python", "text", "python"]
    assert "sprocket with 12 teeth" in md
    assert f"tooth {MAX_OUTPUT_LINES - 1}\n…" in md and f"tooth {MAX_OUTPUT_LINES}\n" not in md  # output capped
    assert "Figure" not in md and "iVBOR" not in md and "IntSlider" not in md  # images and widgets dropped


def test_a_notebook_that_is_not_json_fails_with_its_reason() -> None:
    with pytest.raises(ExtractError, match="not a Jupyter notebook"):
        extract_document(read("broken.ipynb"), "notebook", URL + "broken.ipynb")


def test_openapi_3_overview_and_one_page_per_tag() -> None:
    spec = URL + "petstore.yaml"
    pages = openapi_pages(read("petstore.yaml"), spec)
    assert [(p.url, p.tag, p.title) for p in pages] == [
        (spec, None, "Petstore API"),
        (tag_url(spec, "pets"), "pets", "pets — Petstore API"),
        (tag_url(spec, "store"), "store", "store — Petstore API"),
    ]
    assert tag_url(spec, "pets") == "file:///docs/petstore.yaml?tag=pets"
    pets = pages[1].markdown
    assert headings(pets) == ["# pets {#pets}", "## GET /pets — List all pets {#listPets}",
                              "## POST /pets — Create a pet {#createPet}",
                              "## GET /pets/{petId} — Info for a specific pet {#showPetById}"]
    assert "| `limit` | query | integer (int32) | no | How many pets to return at most (1 to 100). |" in pets
    assert "| `petId` | path | string | yes |" in pets  # a path-level parameter, shared by its operations
    assert "| 200 | A page of pets. |" in pets and "**Response 200** (`application/json`)" in pets
    assert '"description": "The pet\'s name."' in pets  # the $ref to Pet is resolved
    assert '"$ref": "Pet"' in pets  # …and its recursion named, not unrolled
    assert "$ref" not in pets.replace('"$ref": "Pet"', "")
    assert "https://petstore.example.com/v1" in pages[0].markdown


def test_swagger_2_body_parameters_and_definitions() -> None:
    [overview, gadgets] = openapi_pages(read("swagger.json"), URL + "swagger.json")
    assert "https://gadgets.example.com/api" in overview.markdown
    assert "## POST /gadgets — Add a gadget {#addGadget}" in gadgets.markdown
    assert "**Request body**" in gadgets.markdown and '"color": {' in gadgets.markdown
    assert "| `color` | query | string | no | Only gadgets of this color. |" in gadgets.markdown


def test_a_dangling_ref_fails_with_its_path() -> None:
    with pytest.raises(ExtractError, match=r"dangling \$ref #/components/schemas/Thing"):
        openapi_pages(read("dangling.yaml"), URL + "dangling.yaml")


@pytest.mark.parametrize("name", ["manual-outline.pdf", "manual-fonts.pdf"])
def test_pdf_sections_from_outline_or_font_sizes_with_page_anchors(name: str) -> None:
    extracted = extract_document("", "pdf", URL + name, (FORMATS / name).read_bytes())
    assert extracted.title == "Widgetry Manual"
    assert headings(extracted.markdown) == ["# Installing Widgetry {#page-1}",
                                            "# Configuring the frobnicator {#page-2}", "# Troubleshooting {#page-3}"]
    assert "Set frobnicate_level to a number between one and nine" in extracted.markdown


@pytest.mark.parametrize(("name", "reason"), [("encrypted.pdf", "encrypted PDF"), ("damaged.pdf", "damaged PDF")])
def test_encrypted_and_damaged_pdfs_fail_with_their_reason(name: str, reason: str) -> None:
    with pytest.raises(ExtractError, match=reason):
        extract_document("", "pdf", URL + name, (FORMATS / name).read_bytes())


def test_pdf_page_cap() -> None:
    from docshelf.extract.formats.pdf import pdf_to_markdown

    _, markdown = pdf_to_markdown((FORMATS / "manual-outline.pdf").read_bytes(), URL, max_pages=1)
    assert "Troubleshooting" not in markdown and "docshelf read the first 1" in markdown


def test_a_section_about_cookies_is_kept() -> None:
    # Flask's security page: `<section id="set-cookie-options">` once read as a cookie prompt and dropped.
    rst = "Security\n========\n\nIntro.\n\nSet-Cookie options\n------------------\n\nUse ``Secure`` cookies.\n"
    md = extract_document(rst, "rst", URL + "security.rst").markdown
    assert "## Set-Cookie options {#set-cookie-options}" in md and "`Secure` cookies" in md
    html = ("<main><h1>Security</h1><p>Intro.</p><section id='set-cookie-options'><h2>Set-Cookie options</h2>"
            "<p>Use Secure cookies.</p></section><div class='cookie-banner'>We use cookies</div></main>")
    md = extract_document(html, "html", "https://h/security.html").markdown
    assert "Use Secure cookies." in md and "We use cookies" not in md


def test_github_and_jupyter_heading_ids() -> None:
    from docshelf.extract.heading_anchors import add_heading_anchors, github_slug, jupyter_slug

    markdown = "# Install `widgetry` (v2.1)!\n\n```sh\n# a comment, not a heading\n```\n\n## Usage\n\n## Usage\n"
    assert add_heading_anchors(markdown, github_slug).split("\n")[::2] == [
        "# Install `widgetry` (v2.1)! {#install-widgetry-v21}", "```sh", "```", "## Usage {#usage}",
        "## Usage {#usage-1}"]
    assert add_heading_anchors("## Two words", jupyter_slug) == "## Two words {#Two-words}"

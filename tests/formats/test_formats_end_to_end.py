"""Every format through the CLI: `add` a folder (and a site) → `search` → `show`, with heading paths and anchors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from docshelf.cli import cli
from servers import Server
from test_chunk import fences_balanced  # the chunk contract's own oracle

FORMATS = Path(__file__).parents[1] / "fixtures" / "formats"
DOCUMENTS = ["guide.rst", "broken.rst", "tour.ipynb", "broken.ipynb", "petstore.yaml", "swagger.json",
             "dangling.yaml", "manual-outline.pdf", "encrypted.pdf", "damaged.pdf"]


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("formats") / "docs"
    root.mkdir()
    for name in DOCUMENTS:
        shutil.copy(FORMATS / name, root / name)
    (root / "mkdocs.yml").write_text("site_name: Widgetry\nnav:\n  - guide.md\n")  # configuration, not an API
    (root / "data.json").write_text('{"not": "an api"}')
    return root


@pytest.fixture(scope="module")
def shelf(folder: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict]:
    db = str(tmp_path_factory.mktemp("shelf") / "shelf.db")
    code, out = run("--db", db, "add", str(folder), "--source", "formats", "--include-pdf", "--json")
    assert code == 1, out  # malformed files fail, each as its own page
    return db, json.loads(out)


def search(db: str, query: str) -> dict:
    code, out = run("--db", db, "search", query, "--source", "formats", "-k", "3", "--json")
    assert code == 0
    return json.loads(out)[0]


def test_malformed_files_fail_alone_with_their_reason(shelf: tuple[str, dict], folder: Path) -> None:
    _, summary = shelf
    reasons = {f["url"].rsplit("/", 1)[-1]: f["reason"] for f in summary["failures"]}
    assert set(reasons) == {"broken.ipynb", "dangling.yaml", "encrypted.pdf", "damaged.pdf"}
    assert "not a Jupyter notebook" in reasons["broken.ipynb"]
    assert "dangling $ref #/components/schemas/Thing" in reasons["dangling.yaml"]
    assert "encrypted PDF" in reasons["encrypted.pdf"] and "damaged PDF" in reasons["damaged.pdf"]
    # guide.rst, broken.rst, tour.ipynb, the PDF, and petstore (overview + 2 tags) and swagger (overview + 1 tag).
    assert summary["pages_ok"] == 9 and summary["embedded"] == summary["chunks"] > 0


@pytest.mark.parametrize(
    ("query", "page", "heading_path", "anchor"),
    [
        ("pip install widgetry code-block", "guide.rst", ["Widgetry guide", "Installing"], "installing"),
        ("tooth spacing chart plotting", "tour.ipynb", ["A tour of Widgetry", "Plotting the teeth"],
         "Plotting-the-teeth"),
        ("create a pet request body", "petstore.yaml?tag=pets", ["pets", "POST /pets — Create a pet"], "createPet"),
        ("frobnicate_level settings widgetry.toml", "manual-outline.pdf", ["Configuring the frobnicator"], "page-2"),
        ("list gadgets of a color", "swagger.json?tag=gadgets", ["gadgets", "GET /gadgets — List gadgets"],
         "listGadgets"),
    ],
)
def test_search_finds_each_format_with_heading_path_and_anchor(
    shelf: tuple[str, dict], folder: Path, query: str, page: str, heading_path: list[str], anchor: str
) -> None:
    db, _ = shelf
    hit = search(db, query)
    assert hit["url"] == f"{folder.as_uri()}/{page}#{anchor}"
    assert hit["heading_path"] == heading_path
    code, out = run("--db", db, "show", hit["url"], "--chunk", str(hit["chunk_number"]), "--json")
    [chunk] = json.loads(out)["chunks"]
    assert code == 0 and heading_path[-1] in chunk["content"]


def test_every_chunk_keeps_the_chunk_contract(shelf: tuple[str, dict]) -> None:
    db, _ = shelf
    _, out = run("--db", db, "pages", "formats", "--json")
    pages = [p["url"] for p in json.loads(out)["pages"] if p["status"] == "ok"]
    assert len(pages) == 9
    for url in pages:
        _, out = run("--db", db, "show", url, "--json")
        for chunk in json.loads(out)["chunks"]:
            assert fences_balanced(chunk["content"]), (url, chunk["chunk_number"])
            assert 0 < chunk["metadata"]["chunk_size"] == len(chunk["content"])


def test_a_refresh_of_unchanged_files_changes_nothing(shelf: tuple[str, dict], folder: Path) -> None:
    db, _ = shelf
    _, out = run("--db", db, "add", str(folder), "--source", "formats", "--include-pdf", "--json")
    summary = json.loads(out)
    assert summary["pages_ok"] == 0 and summary["pages_removed"] == 0 and summary["embedded"] == 0
    assert summary["pages_unchanged"] == 9


def test_a_named_pdf_is_read_without_include_pdf(folder: Path, tmp_path: Path) -> None:
    code, out = run("--db", str(tmp_path / "s.db"), "add", str(folder / "manual-outline.pdf"), "--json")
    assert code == 0 and json.loads(out)["pages_ok"] == 1


def test_a_site_serves_every_format(tmp_path: Path) -> None:
    site = tmp_path / "www"
    site.mkdir()
    for name in ("guide.rst", "tour.ipynb", "petstore.yaml", "manual-outline.pdf"):
        shutil.copy(FORMATS / name, site / name)
    links = "".join(f'<li><a href="{n}">{n}</a></li>' for n in ("guide.rst", "tour.ipynb", "petstore.yaml",
                                                                "manual-outline.pdf"))
    (site / "index.html").write_text(f"<html><body><main><h1>Widgetry</h1><p>Docs in every format.</p>"
                                     f"<ul>{links}</ul></main></body></html>")
    db = str(tmp_path / "site.db")
    with Server(site) as server:
        code, out = run("--db", db, "add", server.url("/"), "--source", "site", "--json")
        without_pdf = json.loads(out)
        code_pdf, out = run("--db", db, "add", server.url("/"), "--source", "site", "--include-pdf", "--json")
        with_pdf = json.loads(out)
    assert code == 0 and without_pdf["pages_ok"] == 6  # index, guide, tour, petstore overview + 2 tags
    assert code_pdf == 0 and with_pdf["pages_ok"] == 1 and with_pdf["pages_unchanged"] == 6
    hit = search_in(db, "site", "frobnicate_level settings")
    assert hit["url"] == server.url("/manual-outline.pdf#page-2")


def search_in(db: str, source: str, query: str) -> dict:
    _, out = run("--db", db, "search", query, "--source", source, "-k", "1", "--json")
    return json.loads(out)[0]


def test_an_api_description_named_by_url_is_that_document_only(tmp_path: Path) -> None:
    site = tmp_path / "www"
    site.mkdir()
    shutil.copy(FORMATS / "petstore.yaml", site / "petstore.yaml")
    (site / "index.html").write_text("<main><h1>Not wanted</h1><p>The site around the API file.</p></main>")
    with Server(site) as server:
        code, out = run("--db", str(tmp_path / "s.db"), "add", server.url("/petstore.yaml"), "--source", "api",
                        "--json")
        requested = server.paths()
    summary = json.loads(out)
    assert code == 0 and summary["pages_ok"] == 3  # the overview and the pets and store tags
    assert "/index.html" not in requested and "/" not in requested
    hit = search_in(str(tmp_path / "s.db"), "api", "place an order for a pet")
    assert hit["url"] == server.url("/petstore.yaml?tag=store#placeOrder")

"""Local folders and files: read from disk as file:// pages."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from docshelf.crawl import CrawlOptions
from docshelf.errors import ConfigError, FetchError, SkippedPage

OPTIONS = CrawlOptions()


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    """Return a folder of documentation files, with the things a crawl must leave alone."""
    root = tmp_path / "My Docs"
    files = {
        "index.md": "# Home\n\nSee [the site](https://example.invalid/).",
        "guide/intro.html": "<html><head><title>Intro</title></head><body><p>Hi</p></body></html>",
        "guide/old.htm": "<p>Old</p>",
        "guide/deep/notes.txt": "plain notes",
        "api.rst": "API\n===\n",
        "readme.markdown": "# Readme",
        ".git/HEAD.md": "# not docs",
        "node_modules/pkg/README.md": "# not docs",
        ".hidden.md": "# not docs",
        "image.png": "not docs",
        "empty.md": "  \n",
    }
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    (root / "binary.txt").write_bytes(bytes(range(256)))
    (root / "windows.txt").write_bytes("café".encode("cp1252"))
    return root.resolve()


def relative(urls: list[str], root: Path) -> list[str]:
    """Return file:// URLs as paths relative to `root`."""
    return [url.removeprefix(root.as_uri() + "/") for url in urls]


def test_folder_is_read_recursively_sorted_and_filtered(docs: Path, crawl_all):
    outcomes, run = crawl_all(str(docs), OPTIONS)
    assert relative([outcome.url for outcome in outcomes], docs) == [
        "api.rst", "binary.txt", "empty.md", "guide/deep/notes.txt", "guide/intro.html", "guide/old.htm",
        "index.md", "readme.markdown", "windows.txt",
    ]  # fmt: skip
    assert (run.discovered_by, run.complete) == ("folder", True)
    pages = {url: outcome for url, outcome in zip(relative([o.url for o in outcomes], docs), outcomes)}
    assert [pages[name].fetched.kind for name in ("api.rst", "guide/intro.html", "index.md", "readme.markdown")] == [
        "rst", "html", "markdown", "markdown",
    ]  # fmt: skip
    assert pages["guide/deep/notes.txt"].fetched.depth == 2
    assert pages["index.md"].fetched.links == ["https://example.invalid/"]
    assert pages["index.md"].url.startswith("file:///") and "My%20Docs" in pages["index.md"].url
    assert pages["windows.txt"].fetched.text == "café"
    assert (
        isinstance(pages["binary.txt"].error, FetchError)
        and pages["binary.txt"].error.reason == "undecodable bytes"
    )
    assert pages["empty.md"].error.reason == "empty page"


def test_file_url_and_globs_on_relative_path_or_url(docs: Path, crawl_all):
    outcomes, _ = crawl_all(docs.as_uri(), replace(OPTIONS, include=("guide/*",)))
    assert relative([o.url for o in outcomes], docs) == [
        "guide/deep/notes.txt",
        "guide/intro.html",
        "guide/old.htm",
    ]
    outcomes, _ = crawl_all(str(docs), replace(OPTIONS, exclude=("*.txt", "file://*/guide/*")))
    assert relative([o.url for o in outcomes], docs) == ["api.rst", "empty.md", "index.md", "readme.markdown"]


def test_limits(docs: Path, crawl_all):
    outcomes, run = crawl_all(str(docs), replace(OPTIONS, max_pages=2))
    assert len(outcomes) == 2 and not run.complete
    outcomes, run = crawl_all(str(docs), replace(OPTIONS, max_depth=0))
    assert all("/guide/" not in o.url for o in outcomes) and run.complete
    outcomes, _ = crawl_all(str(docs), replace(OPTIONS, max_bytes=5, include=("index.md",)))
    assert isinstance(outcomes[0].error, SkippedPage) and outcomes[0].error.reason == "body over 5 bytes"


def test_unchanged_file_is_not_modified(docs: Path, crawl_all):
    first, _ = crawl_all(str(docs), OPTIONS)
    stored = {o.url: (o.fetched.etag, o.fetched.last_modified) for o in first if o.fetched}
    (docs / "index.md").write_text("# Home, edited", encoding="utf-8")
    second, _ = crawl_all(str(docs), OPTIONS, validators=stored.get)
    changed = [relative([o.url], docs)[0] for o in second if o.fetched]
    assert changed == ["index.md"]
    assert sum(o.not_modified for o in second) == len(stored) - 1


def test_single_file(docs: Path, crawl_all):
    outcomes, run = crawl_all(str(docs / "index.md"), OPTIONS)
    assert [o.url for o in outcomes] == [(docs / "index.md").as_uri()]
    assert run.complete
    with pytest.raises(ConfigError, match="not a file docshelf reads"):
        crawl_all(str(docs / "image.png"), OPTIONS)


def test_missing_folder_is_a_config_error(tmp_path: Path, crawl_all):
    with pytest.raises(ConfigError, match="no such folder"):
        crawl_all(str(tmp_path / "nope"), OPTIONS)

"""URL normalisation, scope and source names: input → expected."""

from __future__ import annotations

import pytest

from docshelf.crawl import CrawlOptions, default_source_name, is_local, normalize_url
from docshelf.crawl.scope import Scope, path_prefix
from docshelf.crawl.urls import is_asset


@pytest.mark.parametrize(
    ("url", "base", "expected"),
    [
        ("HTTPS://Docs.Example.COM/Guide/", None, "https://docs.example.com/Guide/"),
        ("https://docs.example.com", None, "https://docs.example.com/"),
        ("https://docs.example.com:443/a", None, "https://docs.example.com/a"),
        ("http://docs.example.com:80/a", None, "http://docs.example.com/a"),
        ("http://docs.example.com:8080/a", None, "http://docs.example.com:8080/a"),
        ("https://docs.example.com/a/#section", None, "https://docs.example.com/a/"),
        ("https://docs.example.com/a/index.html", None, "https://docs.example.com/a/"),
        ("https://docs.example.com/a/INDEX.HTM?x=1", None, "https://docs.example.com/a/?x=1"),
        ("https://docs.example.com/a/b/../c/./d.html", None, "https://docs.example.com/a/c/d.html"),
        ("https://docs.example.com/a/..", None, "https://docs.example.com/"),
        ("https://docs.example.com/a b/é", None, "https://docs.example.com/a%20b/%C3%A9"),
        ("https://docs.example.com/a%20b", None, "https://docs.example.com/a%20b"),
        ("  https://docs.example.com/a \n", None, "https://docs.example.com/a"),
        ("http://[::1]:8000/x", None, "http://[::1]:8000/x"),
        ("../b.html#top", "https://docs.example.com/a/c/", "https://docs.example.com/a/b.html"),
        ("/root", "https://docs.example.com/a/c/", "https://docs.example.com/root"),
        ("?page=2", "https://docs.example.com/a/list.html", "https://docs.example.com/a/list.html?page=2"),
        ("//cdn.example.com/x", "https://docs.example.com/", "https://cdn.example.com/x"),
        ("mailto:team@example.com", "https://docs.example.com/", "mailto:team@example.com"),
    ],
)
def test_normalize_url(url, base, expected):
    assert normalize_url(url, base) == expected


def test_normalize_url_rejects_a_bad_port():
    with pytest.raises(ValueError):
        normalize_url("http://example.com:port/")


@pytest.mark.parametrize(
    ("url", "asset"),
    [("https://h/logo.PNG", True), ("https://h/manual.pdf", False), ("https://h/site.css", True),
     ("https://h/a.html", False), ("https://h/a/", False), ("https://h/page.md", False), ("https://h/v1.2/", False)],
)  # fmt: skip
def test_is_asset(url, asset):
    assert is_asset(url) is asset


@pytest.mark.parametrize(
    ("path", "prefix"),
    [("/", "/"), ("", "/"), ("/docs/", "/docs/"), ("/docs/index.html", "/docs/"), ("/docs/page.html", "/docs/"),
     ("/3", "/3/"), ("/en/stable", "/en/stable/")],
)  # fmt: skip
def test_path_prefix(path, prefix):
    assert path_prefix(path) == prefix


def test_scope():
    scope = Scope.for_start("http://docs.example.com:8000/en/stable", CrawlOptions(exclude=("*/changelog*",)))
    assert scope.folder == "http://docs.example.com:8000/en/stable/"
    assert scope.contains("http://docs.example.com:8000/en/stable")
    assert scope.contains("https://docs.example.com:8000/en/stable/api/")  # an https upgrade stays in scope
    assert not scope.contains("http://docs.example.com:8000/en/stablex")
    assert not scope.contains("http://docs.example.com/en/stable/")  # another port
    assert not scope.contains("http://other.example.com:8000/en/stable/")
    assert not scope.contains("mailto:x@docs.example.com")
    assert scope.accepts("http://docs.example.com:8000/en/stable/api.html")
    assert not scope.accepts("http://docs.example.com:8000/en/stable/changelog.html")
    assert not scope.accepts("http://docs.example.com:8000/en/stable/logo.png")
    assert not scope.accepts("http://docs.example.com:8000/en/stable/manual.pdf")


def test_scope_takes_pdfs_only_when_asked():
    scope = Scope.for_start("http://docs.example.com/en/", CrawlOptions(include_pdf=True))
    assert scope.accepts("http://docs.example.com/en/manual.pdf")


def test_include_globs_match_the_full_url():
    scope = Scope.for_start("https://h/", CrawlOptions(include=("https://h/api/*", "*/guide/*")))
    assert scope.accepts("https://h/api/x")
    assert scope.accepts("https://h/v2/guide/y")
    assert not scope.accepts("https://h/blog/z")


@pytest.mark.parametrize(
    ("root", "name"),
    [
        ("https://flask.palletsprojects.com/en/stable/", "flask_palletsprojects_com_en_stable"),
        ("https://docs.python.org/3/", "docs_python_org_3"),
        ("https://www.example.com/index.html", "example_com"),
        ("docs.python.org/3/library", "docs_python_org_3_library"),
        ("http://127.0.0.1:8000/docs/", "127_0_0_1_8000_docs"),
        ("./My Docs", "my_docs"),
        ("file:///srv/Project-Docs/", "project_docs"),
        ("/", "source"),
    ],
)
def test_default_source_name(root, name):
    assert default_source_name(root) == name


def test_default_source_name_of_a_file(tmp_path):
    (tmp_path / "README.md").write_text("# hi")
    assert default_source_name(str(tmp_path / "README.md")) == "readme"


@pytest.mark.parametrize(
    ("root", "local"),
    [("https://docs.example.com/", False), ("http://127.0.0.1:8000", False), ("docs.example.com", False),
     ("file:///srv/docs", True), ("/srv/docs", True), ("./docs", True), ("~/docs", True), (".", True)],
)  # fmt: skip
def test_is_local(root, local):
    assert is_local(root) is local

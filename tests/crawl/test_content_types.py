"""Content types and decoding: what the crawler reads, and how bytes become text."""

from __future__ import annotations

import codecs

import pytest

from docshelf.crawl.content import content_kind, decode, header_charset, looks_binary


@pytest.mark.parametrize(
    ("content_type", "url", "kind"),
    [
        ("text/html; charset=utf-8", "https://h/a", "html"),
        ("application/xhtml+xml", "https://h/a", "html"),
        ("text/markdown", "https://h/a", "markdown"),
        ("text/x-markdown", "https://h/a", "markdown"),
        ("text/plain", "https://h/a.md", "markdown"),
        ("application/octet-stream", "https://h/a.markdown", "markdown"),
        ("text/plain", "https://h/a.txt", "text"),
        (None, "https://h/a.md", "markdown"),
        (None, "https://h/a.rst", "rst"),
        ("text/x-rst", "https://h/a", "rst"),
        ("text/plain", "https://h/a.rst", "rst"),
        ("application/octet-stream", "https://h/a.ipynb", "notebook"),
        ("application/json", "https://h/a.ipynb", "notebook"),
        ("application/yaml", "https://h/openapi", "openapi"),
        ("text/plain", "https://h/openapi.yml", "openapi"),
        (None, "https://h/a/", "html"),
        ("application/pdf", "https://h/a", None),
        ("application/octet-stream", "https://h/a.bin", None),
        ("image/png", "https://h/a.md", None),
        ("application/json", "https://h/a", "openapi"),  # the OpenAPI reader skips JSON that is not one
    ],
)
def test_content_kind(content_type, url, kind):
    assert content_kind(content_type, url) == kind


def test_pdfs_are_read_only_when_included():
    assert content_kind("application/pdf", "https://h/a", include_pdf=True) == "pdf"
    assert content_kind("application/octet-stream", "https://h/a.pdf", include_pdf=True) == "pdf"
    assert content_kind("application/pdf", "https://h/a.pdf") is None


def test_header_charset():
    assert header_charset('text/html; Charset="ISO-8859-1"') == "ISO-8859-1"
    assert header_charset("text/html") is None


@pytest.mark.parametrize(
    ("body", "kind", "content_type", "text"),
    [
        ("héllo".encode(), "html", "text/html", "héllo"),
        ("héllo".encode("cp1252"), "html", "text/html; charset=windows-1252", "héllo"),
        (
            "“quoted”".encode("cp1252"),
            "text",
            "text/plain; charset=iso-8859-1",
            "“quoted”",
        ),  # read as browsers do
        (
            '<meta charset="iso-8859-5"><p>мир'.encode("iso-8859-5"),
            "html",
            "text/html",
            '<meta charset="iso-8859-5"><p>мир',
        ),
        (
            "héllo".encode("cp1252"),
            "html",
            "text/html; charset=utf-8",
            "héllo",
        ),  # mislabelled: cp1252 fallback
        ("héllo".encode(), "html", "text/html; charset=unknown-charset", "héllo"),
        (codecs.BOM_UTF8 + "héllo".encode(), "text", "text/plain; charset=cp1252", "héllo"),  # the BOM wins
        ("hé".encode("utf-16"), "text", "text/plain", "hé"),
        ("hé".encode("utf-16-le"), "text", "text/plain; charset=utf-16le", "hé"),
    ],
)
def test_decode(body, kind, content_type, text):
    assert decode(body, kind, content_type) == text


@pytest.mark.parametrize(
    "body",
    [
        bytes(range(256)),  # binary, with NUL
        b"\x89PNG\r\n\x1a\n" + bytes(range(1, 32)) * 8,  # control bytes, no NUL
        b"caf\xe9 \x81",  # invalid UTF-8, and 0x81 is undefined in cp1252
    ],
)
def test_undecodable(body):
    assert decode(body, "html", "text/html; charset=utf-8") is None


def test_looks_binary():
    assert looks_binary(b"abc\x00")
    assert not looks_binary(b"line one\r\n\tline two\x0c")

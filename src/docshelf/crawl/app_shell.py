"""Whether a page's HTML is an app shell: the content is built in the browser by scripts, not sent by the server."""

from __future__ import annotations

from selectolax.lexbor import LexborHTMLParser

# Elements client-side frameworks mount into, and API reference renderers (Redoc, Swagger UI, RapiDoc, Elements).
MOUNT_POINTS = ("#root, #app, #__next, #__nuxt, #___gatsby, #svelte, [data-reactroot], [ng-app], [ng-version],"
                " app-root, redoc, rapi-doc, elements-api, #redoc, #swagger-ui")
SHELL_WORDS = 40
"""A body with fewer words than this (scripts and styles aside) holds no documentation of its own."""
MOUNT_WORDS = 20
"""A mount point with fewer words than this has not been rendered into by the server."""
_NOT_TEXT = "script, style, noscript, template"


SMALL_PAGE_WORDS = 300
"""A scripted page with fewer words than this is also rendered when its main content comes out empty."""


def needs_browser(html: str, url: str) -> bool:
    """Return True when `render="auto"` should render the page: an app shell, or a small scripted page whose
    main content comes out empty (the scripts fill it in)."""
    if looks_like_app_shell(html):
        return True
    tree = LexborHTMLParser(html)
    if not tree.css_first("script") or tree.body is None:
        return False
    for node in tree.body.css(_NOT_TEXT):
        node.decompose()
    if len(tree.body.text(deep=True, separator=" ").split()) >= SMALL_PAGE_WORDS:
        return False
    from docshelf.errors import ExtractError
    from docshelf.extract import extract_html

    try:
        extract_html(html, url)
    except ExtractError:
        return True
    return False


def looks_like_app_shell(html: str) -> bool:
    """Return True when the page needs a browser: it has scripts, and little text or an empty mount point.

    >>> looks_like_app_shell('<body><div id="app"></div><script src="app.js"></script></body>')
    True
    """
    tree = LexborHTMLParser(html)
    if not tree.css_first("script"):
        return False
    body = tree.body
    if body is None:
        return True
    for node in body.css(_NOT_TEXT):
        node.decompose()
    if len(body.text(deep=True, separator=" ").split()) < SHELL_WORDS:
        return True
    mount = body.css_first(MOUNT_POINTS)
    return mount is not None and len(mount.text(deep=True, separator=" ").split()) < MOUNT_WORDS

"""Links and images: absolute URLs, no empty links, no images without alt text."""

from __future__ import annotations

from urllib.parse import urljoin

from selectolax.lexbor import LexborHTMLParser, LexborNode

from docshelf.extract.dom import remove_all


def base_url(tree: LexborHTMLParser, url: str) -> str:
    """Return the URL relative links resolve against: the page URL, or its `<base href>`."""
    base = tree.css_first("base[href]")
    return urljoin(url, base.attributes.get("href") or "") if base is not None else url


def rewrite_images(main: LexborNode, base: str) -> None:
    """Drop images without alt text (nothing to write) and make the other sources absolute."""
    remove_all(img for img in main.css("img") if not (img.attributes.get("alt") or "").strip())
    for img in main.css("img"):
        img.attrs["src"] = urljoin(base, img.attributes.get("src") or "")
        for name in ("title", "srcset", "width", "height"):
            if name in img.attributes:
                del img.attrs[name]


def rewrite_links(main: LexborNode, base: str) -> None:
    """Make hrefs absolute, drop links with no text, and unwrap links that go nowhere.

    Must run after `rewrite_images`: a link whose only content was an image
    without alt text is empty, and an empty link is what wrote `[](url)`.
    """
    absolute: dict[str, str] = {}  # API pages repeat the same few hrefs hundreds of times
    for link in main.css("a"):
        href = (link.attributes.get("href") or "").strip()
        if not link.text(deep=True).strip() and link.css_first("img") is None:
            link.decompose()
        elif not href or href.lower().startswith("javascript:"):
            link.unwrap()
        else:
            if href not in absolute:
                absolute[href] = urljoin(base, href)
            link.attrs["href"] = absolute[href]
            # A link title becomes `"…"` noise in Markdown (Sphinx writes "(in Python v3.12)").
            if "title" in link.attributes:
                del link.attrs["title"]

"""Check rendered HTML by its DOM: markup that could run or load must be gone, while text may quote it."""

from __future__ import annotations

from lxml import html as lxml_html

ACTIVE_TAGS = frozenset({"script", "iframe", "frame", "svg", "math", "style", "object", "embed", "form", "button",
                         "meta", "base", "link"})
URL_ATTRIBUTES = frozenset({"href", "src", "action", "formaction", "xlink:href"})
ACTIVE_SCHEMES = ("javascript:", "vbscript:", "data:")


def active_parts(fragment: str) -> list[str]:
    """Return the elements and attributes of `fragment` that could run code or load a page, as `tag[attr]`."""
    root = lxml_html.fragment_fromstring(fragment, create_parent="div")
    found = []
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue
        if element.tag in ACTIVE_TAGS:
            found.append(f"<{element.tag}>")
        for name, value in element.attrib.items():
            url = "".join(value.split()).lower()
            if name.startswith("on") or name == "style" or (name in URL_ATTRIBUTES and url.startswith(ACTIVE_SCHEMES)):
                found.append(f"{element.tag}[{name}]")
    return found

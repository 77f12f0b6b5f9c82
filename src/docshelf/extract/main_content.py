"""Find the main content of a documentation page.

Detectors are registered like plugins (datasette's DEFAULT_PLUGINS idea): the
built-in ones for Sphinx, MkDocs, MkDocs Material and Docusaurus sit in the
same registry an outside one would use, and are tried in order. The first
detector that finds an element with text wins; the generic fallback
(`main`, `article`, `[role=main]`, then the densest text block) comes last.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from selectolax.lexbor import LexborHTMLParser, LexborNode

from docshelf.extract.dom import clean_text


class Detector(Protocol):
    """Something that can point at a page's main content."""

    @property
    def name(self) -> str:
        """The detector's name, unique in the registry."""
        ...

    def find(self, tree: LexborHTMLParser) -> LexborNode | None:
        """Return the main-content element of `tree`, or None when this detector does not apply."""
        ...


@dataclass(frozen=True)
class SelectorDetector:
    """A detector made of CSS selectors, tried in order; the first match with text wins."""

    name: str
    selectors: tuple[str, ...]

    def find(self, tree: LexborHTMLParser) -> LexborNode | None:
        """Return the first element matching one of the selectors that holds any text."""
        for selector in self.selectors:
            for node in tree.css(selector):
                if clean_text(node):
                    return node
        return None


@dataclass(frozen=True)
class DensestBlockDetector:
    """The last resort for hand-written pages: descend from <body> while one child holds most of the text.

    Link text does not count, so a navigation column never wins against prose,
    and a page whose text is all links (a menu left without its <nav>) has no content.
    The descent stops where it would leave a section heading behind: a page whose
    narrative sits beside one long table (SQLite's opcode list) keeps its narrative.
    """

    name: str = "densest-block"
    share: float = 0.6
    """A child must hold at least this share of its parent's non-link text to be descended into."""
    min_prose: int = 20
    """Fewer characters outside links than this, and the page is navigation only."""

    def find(self, tree: LexborHTMLParser) -> LexborNode | None:
        """Return the smallest block that still holds most of the body's non-link text."""
        node = tree.body
        if node is None or _prose_length(node) < self.min_prose:
            return None
        total = _prose_length(node, without_code=True)
        while True:
            children = [(c, _prose_length(c, without_code=True)) for c in node.iter() if c.tag in _CONTAINERS]
            best = max(children, key=lambda pair: pair[1], default=None)
            if best is None or best[1] < self.share * total or _section_headings(best[0]) < _section_headings(node):
                return node
            node, total = best


# Only wrappers are descended into: a <pre>, list or paragraph that holds most of
# the text is part of the content, not the content itself.
_CONTAINERS = frozenset({"div", "section", "article", "main", "center", "table", "tbody", "tr", "td"})


def _section_headings(node: LexborNode) -> int:
    """Return how many h1 and h2 headings `node` holds that are not just a link (a site name in a header is)."""
    return sum(1 for heading in node.css("h1, h2") if _prose_length(heading) > 0)


def _prose_length(node: LexborNode, *, without_code: bool = False) -> int:
    """Return the length of the node's text outside links (and outside <pre> blocks when asked).

    A long code listing must not pull the descent into its wrapper and leave
    the page's prose behind.
    """
    links = sum(len(clean_text(a)) for a in node.css("a"))
    code = sum(len(clean_text(pre)) for pre in node.css("pre")) if without_code else 0
    return max(len(clean_text(node)) - links - code, 0)


DEFAULT_DETECTORS: tuple[Detector, ...] = (
    SelectorDetector("mkdocs-material", ("article.md-content__inner",)),
    SelectorDetector("docusaurus", ("article .theme-doc-markdown", "div.theme-doc-markdown")),
    SelectorDetector(
        "mkdocs",
        (".col-md-9[role=main]", "div.rst-content [role=main]", "div.rst-content .document"),
    ),
    SelectorDetector("sphinx", ("div[role=main]", "article[role=main]", "div.body")),
    SelectorDetector("generic", ("main", "article", "[role=main]")),
    DensestBlockDetector(),
)

_registry: list[Detector] = list(DEFAULT_DETECTORS)


def register_detector(detector: Detector, *, before: str | None = "generic") -> None:
    """Add `detector` to the registry just before the detector named `before`.

    By default that is "generic", so a site-specific detector runs ahead of the
    fallbacks that match almost any page; `before=None` (or an unknown name)
    appends it. Registering under an existing name replaces that detector in place.
    """
    names = [d.name for d in _registry]
    if detector.name in names:
        _registry[names.index(detector.name)] = detector
    elif before in names:
        _registry.insert(names.index(before), detector)
    else:
        _registry.append(detector)


def detectors() -> list[Detector]:
    """Return the registered detectors in the order they are tried."""
    return list(_registry)


def find_main_content(tree: LexborHTMLParser) -> tuple[str, LexborNode] | None:
    """Return the name of the detector that matched and the main-content element, or None."""
    for detector in _registry:
        node = detector.find(tree)
        if node is not None:
            return detector.name, node
    return None

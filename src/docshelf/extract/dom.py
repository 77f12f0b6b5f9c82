"""Small helpers over selectolax (lexbor) nodes that several extract steps share."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from selectolax.lexbor import LexborNode

HEADINGS = "h1, h2, h3, h4, h5, h6"
_SPACES = re.compile(r"\s+")


def ancestors(node: LexborNode) -> Iterator[LexborNode]:
    """Yield the parents of `node`, nearest first, up to the document."""
    parent = node.parent
    while parent is not None:
        yield parent
        parent = parent.parent


def select(root: LexborNode, selector: str) -> list[LexborNode]:
    """Return the elements under `root` matching a CSS selector list, in document order, each once.

    Lexbor returns an element once per selector of the list it matches.
    """
    seen: set[int] = set()
    found = []
    for node in root.css(selector):
        if node.mem_id not in seen:
            seen.add(node.mem_id)
            found.append(node)
    return found


def remove_all(nodes: Iterable[LexborNode]) -> None:
    """Remove every node of `nodes` from its tree, with its subtree.

    A node listed twice, or lying inside another node of the list, is removed
    once: destroying it a second time would touch freed memory.
    """
    nodes = list({node.mem_id: node for node in nodes}.values())
    marked = {node.mem_id for node in nodes}
    outermost = [n for n in nodes if not any(a.mem_id in marked for a in ancestors(n))]
    for node in outermost:
        node.decompose()


def clean_text(node: LexborNode) -> str:
    """Return the node's text with runs of whitespace collapsed to one space."""
    return _SPACES.sub(" ", node.text(deep=True)).strip()


def classes(node: LexborNode) -> list[str]:
    """Return the node's class names."""
    return (node.attributes.get("class") or "").split()

"""Anchors for the headings of a Markdown document, written as `{#id}`, the way a renderer would name them.

Markdown carries no ids of its own: the renderer that shows it makes them, each its own
way. Where docshelf knows the renderer (Jupyter for a notebook, GitHub or GitLab for a
file in a repository) it gives each heading that renderer's id, so `url#anchor` lands on
the section.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$")
_FENCE = re.compile(r"^[ \t]{0,3}(`{3,}|~{3,})")


def jupyter_slug(text: str) -> str:
    """Return Jupyter's id for a heading: its text with spaces as hyphens (`Two words` → `Two-words`)."""
    return re.sub(r"[{}\s]+", "-", text.strip())


def github_slug(text: str) -> str:
    """Return GitHub's (and GitLab's) id for a heading: lowercase, punctuation dropped, spaces as hyphens.

    >>> github_slug("Install `widgetry` (v2.1)!")
    'install-widgetry-v21'
    """
    text = re.sub(r"`|\*\*|__|\[([^\]]*)\]\([^)]*\)", r"\1", text.strip().lower())
    kept = "".join(c for c in text if c in " -_" or unicodedata.category(c)[0] in "LNM")
    return kept.replace(" ", "-")


def add_heading_anchors(markdown: str, slug: Callable[[str], str]) -> str:
    """Return `markdown` with `{#id}` after every ATX heading outside code fences that has none.

    A repeated id gets `-1`, `-2`, … as GitHub and Jupyter number them.
    """
    lines = markdown.split("\n")
    fence = ""
    seen: dict[str, int] = {}
    for index, line in enumerate(lines):
        opening = _FENCE.match(line)
        if opening and (not fence or opening.group(1).startswith(fence)):
            fence = "" if fence else opening.group(1)
            continue
        match = None if fence else _HEADING.match(line)
        if match is None or "{#" in line:
            continue
        anchor = slug(match.group(2))
        if not anchor or any(c in anchor for c in "{}"):
            continue
        count = seen.get(anchor, 0)
        seen[anchor] = count + 1
        unique = f"{anchor}-{count}" if count else anchor
        lines[index] = f"{match.group(1)} {match.group(2)} {{#{unique}}}"
    return "\n".join(lines)

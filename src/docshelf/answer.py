"""Answers and their citations: the no-LLM passages answer, and checking a model's links.

An answer may only cite chunks that a tool returned during the run that
wrote it. `validate_citations` maps every URL in the answer to such a
chunk; a URL that maps to none is reported as unverified (an invented
link), never listed as a source.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from docshelf.shelf_tools import ChunkRef, Passage, ShelfTools

NO_LLM_HINT = ("No LLM configured, so these are the best passages from the shelf. For a written answer set "
               "DOCSHELF_LLM_MODEL (e.g. openai:gpt-4o-mini, with its API key) or DOCSHELF_LLM_BASE_URL for an "
               "OpenAI-compatible server (Ollama, vLLM, LM Studio), or pass --model.")

# Stops at whitespace, or at the characters that close Markdown links and autolinks.
_URL = re.compile(r"(?:https?|file)://[^\s<>()\[\]\"'`]+")
_TRAILING = ".,;:!?*_"


@dataclass
class Answer:
    """What `docshelf ask` returns, in every mode."""

    answer: str
    """Markdown text."""
    citations: list[ChunkRef] = field(default_factory=list)
    """Cited chunks, each one returned by a tool in this run, in order of first mention."""
    unverified: list[str] = field(default_factory=list)
    """URLs in the answer that match no chunk returned in this run (flagged, not cited)."""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    usage: dict[str, int] = field(default_factory=dict)
    model: str | None = None
    """The model that wrote the answer; None for the passages answer."""

    def to_json(self) -> dict[str, Any]:
        """Return the `docshelf ask --json` shape."""
        return {"answer": self.answer, "citations": [c.to_json() for c in self.citations],
                "unverified_urls": self.unverified, "tool_calls": self.tool_calls, "usage": self.usage,
                "model": self.model}


def cited_urls(text: str) -> list[str]:
    """Return the URLs in a Markdown text, in order, without duplicates or trailing punctuation."""
    seen: dict[str, None] = {}
    for match in _URL.finditer(text):
        seen.setdefault(match.group(0).rstrip(_TRAILING))
    return list(seen)


def validate_citations(text: str, returned: dict[str, ChunkRef]) -> tuple[list[ChunkRef], list[str]]:
    """Return (citations, unverified URLs) for an answer, given the chunks returned by tools (by cite URL).

    A URL cites a chunk when it equals the chunk's url#anchor, or when it is the bare page URL of a
    returned chunk (then it cites the first such chunk). Anything else is unverified.
    """
    by_page: dict[str, ChunkRef] = {}
    for ref in sorted(returned.values(), key=lambda r: r.chunk_number):
        by_page.setdefault(ref.page_url, ref)
    citations: dict[ChunkRef, None] = {}
    unverified: list[str] = []
    for url in cited_urls(text):
        ref = returned.get(url) or (by_page.get(url) if "#" not in url else None)
        if ref is None:
            unverified.append(url)
        else:
            citations.setdefault(ref)
    return list(citations), unverified


def answer_with_passages(tools: ShelfTools, question: str, sources: tuple[str, ...] = (), k: int = 8) -> Answer:
    """Return the no-LLM answer to `question`: one search, its passages grouped by page."""
    result = tools.search_docs(question, sources or None, k)
    call = {"tool": "search_docs", "args": {"query": question, "source": list(sources) or None, "k": k}}
    return passages_answer(question, result.passages, [call])


def passages_answer(question: str, passages: Iterable[Passage], tool_calls: list[dict[str, Any]]) -> Answer:
    """Return the no-LLM answer: the best passages grouped by page, each with its citation URL."""
    by_page: dict[str, list[Passage]] = {}
    for passage in passages:
        by_page.setdefault(passage.ref.page_url, []).append(passage)
    if not by_page:
        text = f"The shelf holds nothing that matches {question!r}.\n\n{NO_LLM_HINT}"
        return Answer(text, tool_calls=tool_calls)
    parts = [f"Best passages for {question!r}:\n"]
    citations: list[ChunkRef] = []
    for page_url, group in by_page.items():
        first = group[0]
        parts.append(f"## {first.heading_path[0] if first.heading_path else first.ref.title}\n<{page_url}>\n")
        for passage in group:
            citations.append(passage.ref)
            parts.append(f"**[{len(citations)}]** {' › '.join(passage.heading_path)} — <{passage.ref.url}>\n\n"
                         f"{_excerpt(passage.content)}\n")
    parts.append(f"_{NO_LLM_HINT}_")
    return Answer("\n".join(parts), citations=citations,
                  tool_calls=tool_calls)


def _excerpt(content: str, limit: int = 1200) -> str:
    """Return the passage text, cut at a line break near `limit` so code blocks stay readable."""
    content = content.strip()
    if len(content) <= limit:
        return content
    cut = content.rfind("\n", 0, limit)
    head = content[: cut if cut > limit // 2 else limit]
    if head.count("```") % 2:  # never leave a code fence open
        head += "\n```"
    return head + "\n…"

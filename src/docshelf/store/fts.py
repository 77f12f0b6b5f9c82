"""Turn free text into a safe FTS5 MATCH expression, and chunks into indexed text.

A user's question ("How do I use os.makedirs with exist_ok?") is not valid
FTS5 syntax: dots, hyphens, parentheses and quotes all mean something there.
Every term is quoted, so nothing the user types can break the MATCH, and the
terms are OR-ed, because a question rarely repeats every word of its answer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from docshelf.models import Chunk, SectionStart

# Identifiers keep their dots and underscores ("os.makedirs", "exist_ok",
# "Session.get"); the FTS tokenizer treats "_" as a word character and splits
# on ".", so a quoted dotted name becomes an exact phrase.
_TERM = re.compile(r"[A-Za-z0-9_]+(?:[.:][A-Za-z0-9_]+)*")

# Function words that carry no topic; matching on them only adds noise.
STOPWORDS = frozenset(
    ["a", "about", "above", "after", "again", "against", "all", "am", "an", "and", "any", "are", "as", "at", "be", "because", "been", "before", "being", "below", "between", "both", "but", "by", "can", "could", "did", "do", "does", "doing", "down", "during", "each", "few", "for", "from", "further", "had", "has", "have", "having", "he", "her", "here", "hers", "herself", "him", "himself", "his", "how", "i", "if", "in", "into", "is", "it", "its", "itself", "just", "me", "more", "most", "my", "myself", "no", "nor", "not", "now", "of", "off", "on", "once", "only", "or", "other", "our", "ours", "ourselves", "out", "over", "own", "same", "she", "should", "so", "some", "such", "than", "that", "the", "their", "theirs", "them", "themselves", "then", "there", "these", "they", "this", "those", "through", "to", "too", "under", "until", "up", "use", "using", "very", "was", "way", "we", "were", "what", "when", "where", "which", "while", "who", "whom", "why", "will", "with", "would", "you", "your", "yours", "yourself", "yourselves", "want", "need", "get", "make", "instead", "without", "via", "one"]
)


_IDENT_PART = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")
_COMPOUND = re.compile(r"\b\w*(?:_\w+|[a-z][A-Z]\w*)\b")


def identifier_parts(text: str) -> str:
    """Return the parts of compound identifiers in `text` (`exist_ok` → `exist ok`, `getJson` → `get json`).

    Indexed beside the text so that a question in words finds the identifier.
    """
    parts: list[str] = []
    for match in _COMPOUND.finditer(text):
        parts.extend(p.lower() for p in _IDENT_PART.findall(match.group(0)))
    return " ".join(parts)


def fts_columns(page_title: str, heading_path: Sequence[str], content: str) -> tuple[str, str, str]:
    """Return the SQLite shelf's indexed text of a chunk: (title, headings, body).

    The full-text table is contentless, so this is the one place that text is made:
    a chunk is indexed with it when stored, and re-indexed with it when a migration
    rebuilds the table.
    """
    headings = " ".join(heading_path)
    return (
        page_title + " " + identifier_parts(page_title),
        headings + " " + identifier_parts(headings),
        content + "\n" + identifier_parts(content),
    )


def inbound_fts_text(inbound: str) -> str:
    """Return the indexed form of a chunk's inbound link text (docshelf.inbound): the text and its identifiers' parts.

    It has a full-text table of its own because FTS5's bm25 normalises by the length of the
    whole row: as a fourth column, the many index entries that point at a popular section
    made its row long, and so lowered that section's score for the words of its own body.
    """
    return inbound + "\n" + identifier_parts(inbound)


def query_terms(text: str) -> list[str]:
    """Return the distinct search terms of `text`, in order, stopwords dropped."""
    seen: dict[str, None] = {}
    for match in _TERM.finditer(text):
        term = match.group(0).strip("._:")
        low = term.lower()
        if not term or low in STOPWORDS or (len(term) == 1 and not term.isdigit()):
            continue
        seen.setdefault(term, None)
    return list(seen)


def match_expression(text: str) -> str | None:
    """Return an FTS5 MATCH expression OR-ing the quoted terms of `text`, or None if it has none."""
    terms = query_terms(text)
    if not terms:
        return None
    return " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)


def chunk_headings(chunk: Chunk) -> list[str]:
    """Return the headings of every section a chunk holds, each once, top down: what its headings field indexes."""
    return section_headings(chunk.heading_path, chunk.sections)


def section_headings(heading_path: Sequence[str], sections: Sequence[SectionStart]) -> list[str]:
    """Return the headings of a chunk's sections (or of its heading path when it holds one), each once."""
    paths = [s.heading_path for s in sections] or [heading_path]
    return list(dict.fromkeys(h for path in paths for h in path))

"""Jupyter notebooks → Markdown: Markdown cells as they are, code fenced in the kernel's language, short text outputs.

Images, HTML and widget outputs are dropped (no text to search); a long text output is
cut to `MAX_OUTPUT_LINES` lines, since a cell that prints a dataframe would otherwise
outweigh the prose around it.
"""

from __future__ import annotations

import warnings

import nbformat

from docshelf.errors import ExtractError
from docshelf.extract.heading_anchors import add_heading_anchors, jupyter_slug

MAX_OUTPUT_LINES = 20
MAX_OUTPUT_CHARS = 2000


def notebook_to_markdown(text: str, url: str) -> str:
    """Return the Markdown of a notebook's cells, in order.

    Raises:
        ExtractError: the file is not a notebook (not JSON, or not nbformat's shape).
    """
    try:
        with warnings.catch_warnings():
            # Notebooks written before nbformat 4.5 lack cell ids; nbformat warns, and a warning is no reason to fail.
            warnings.simplefilter("ignore")
            notebook = nbformat.reads(text, as_version=4)
    except Exception as exc:  # nbformat raises JSON, validation and version errors alike
        raise ExtractError(url, f"not a Jupyter notebook: {_first_line(exc)}") from exc
    language = _language(notebook)
    parts: list[str] = []
    for cell in notebook.get("cells", []):
        source = _text(cell.get("source", "")).strip("\n")
        kind = cell.get("cell_type")
        if kind == "markdown" and source.strip():
            parts.append(add_heading_anchors(source, jupyter_slug))
        elif kind == "code" and source.strip():
            parts.append(_fence(source, language))
            output = _text_output(cell.get("outputs", []))
            if output:
                parts.append(_fence(output, "text"))
        elif kind == "raw" and source.strip():
            parts.append(_fence(source, ""))
    return "\n\n".join(parts) + "\n" if parts else ""


def _language(notebook: dict) -> str:
    """Return the notebook's code language from its kernel (kernelspec, then language_info), default python."""
    metadata = notebook.get("metadata", {})
    language = metadata.get("kernelspec", {}).get("language") or metadata.get("language_info", {}).get("name")
    return str(language or "python").lower()


def _text_output(outputs: list[dict]) -> str:
    """Return the text a code cell printed or returned, cut to the caps; rich outputs are dropped."""
    texts: list[str] = []
    for output in outputs:
        kind = output.get("output_type")
        if kind == "stream":
            texts.append(_text(output.get("text", "")))
        elif kind in ("execute_result", "display_data"):
            data = output.get("data", {})
            # A widget or an image also carries a text/plain repr ("<Figure ...>"), which says nothing.
            if "text/plain" in data and not any(k.startswith(("image/", "application/vnd.jupyter.widget")) for k in data):
                texts.append(_text(data["text/plain"]))
        elif kind == "error":
            texts.append(f"{output.get('ename', 'Error')}: {output.get('evalue', '')}")
    text = "\n".join(t.rstrip("\n") for t in texts if t.strip())
    lines = text.split("\n")
    cut = len(lines) > MAX_OUTPUT_LINES or len(text) > MAX_OUTPUT_CHARS
    text = "\n".join(lines[:MAX_OUTPUT_LINES])[:MAX_OUTPUT_CHARS]
    return f"{text}\n…" if cut else text


def _fence(code: str, language: str) -> str:
    """Return `code` in a fence longer than any backtick run inside it."""
    longest = max((len(run) for run in code.split("\n") if set(run.strip()) == {"`"}), default=0)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}{language}\n{code}\n{ticks}"


def _text(value: str | list[str]) -> str:
    """Return a notebook text field, which nbformat allows as a string or a list of lines."""
    return "".join(value) if isinstance(value, list) else str(value)


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]

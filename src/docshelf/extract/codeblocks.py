"""Code blocks: one plain `<pre><code class="language-x">` per block, with the code text exact.

Highlighters wrap code in many shapes: Sphinx `<div class="highlight-python">
<div class="highlight"><pre>` with Pygments spans, Material `<div class="language-python
highlight">` with line anchors, Docusaurus Prism lines ending in `<br>`, and
line-number tables. Rewriting them all to one shape lets the converter write
fenced blocks that keep their language and every character of the code.
"""

from __future__ import annotations

import re

from selectolax.lexbor import LexborHTMLParser, LexborNode

from docshelf.extract.dom import ancestors, classes, clean_text

_LANGUAGE_CLASS = re.compile(r"^(?:language|lang|highlight)-(?:source-)?([\w+#.-]+)$")
# How far up from <pre> a wrapper may carry the language class (Sphinx: 2).
_WRAPPER_DEPTH = 3
# Sphinx writes "default" for its default lexer, which is Python 3; "none" means plain text.
_LANGUAGE_ALIASES = {"default": "python", "python3": "python", "none": "", "plaintext": "text"}
_TITLE = ".filename, [class^=codeBlockTitle]"


def normalize_code_blocks(tree: LexborHTMLParser, main: LexborNode) -> None:
    """Replace every code block of `main` with `<pre><code class="language-x">text</code></pre>`."""
    for table in main.css("table.highlighttable"):
        _unwrap_line_number_table(tree, table)
    for pre in main.css("pre"):
        if any(a.tag == "pre" for a in ancestors(pre)):
            continue
        replacement = _plain_code_block(tree, code_text(pre), code_language(pre))
        pre.insert_before(replacement, move=True)
        pre.decompose()


def _unwrap_line_number_table(tree: LexborHTMLParser, table: LexborNode) -> None:
    """Replace a Pygments line-number table with its title (if any) and its code <pre>."""
    title = table.css_first(_TITLE)
    if title is not None and clean_text(title):
        paragraph = tree.create_node("p")
        paragraph.insert_child(clean_text(title))
        table.insert_before(paragraph, move=True)
    code_cell = table.css_first("td.code pre") or table.css_first("pre")
    if code_cell is not None:
        table.insert_before(code_cell, move=True)
    table.decompose()


def code_text(pre: LexborNode) -> str:
    """Return the code as a reader sees it: text of all spans, `<br>` as newline, no trailing newlines."""
    for br in pre.css("br"):
        br.replace_with("\n")
    return pre.text(deep=True).rstrip("\n")


def code_language(pre: LexborNode) -> str:
    """Return the block's language from `language-x`, `lang-x`, `highlight-x` or `data-lang`, else ""."""
    code = pre.css_first("code")
    candidates = [code, pre] if code is not None else [pre]
    for depth, wrapper in enumerate(ancestors(pre)):
        if depth == _WRAPPER_DEPTH:
            break
        candidates.append(wrapper)
    for node in candidates:
        for name in classes(node):
            match = _LANGUAGE_CLASS.match(name)
            if match:
                return _normalize_language(match.group(1))
        if node.attributes.get("data-lang"):
            return _normalize_language(node.attributes["data-lang"] or "")
    return ""


def _normalize_language(name: str) -> str:
    """Return the fence info string for a highlighter's language name."""
    name = name.lower()
    return _LANGUAGE_ALIASES.get(name, name)


def _plain_code_block(tree: LexborHTMLParser, text: str, language: str) -> LexborNode:
    """Return a new `<pre><code>` element holding `text`, tagged with `language`."""
    code = tree.create_node("code")
    if language:
        code.attrs["class"] = f"language-{language}"
    code.insert_child(text)
    pre = tree.create_node("pre")
    pre.insert_child(code, move=True)
    return pre

"""reStructuredText → the Markdown the HTML path produces, through docutils.

docutils writes the document as HTML (sections with ids, `<pre>` code blocks,
admonitions, tables), and the HTML extractor turns that into Markdown, so an
`.rst` page and the Sphinx HTML of the same page read alike on the shelf.

Sphinx adds roles and directives docutils does not know (`:func:`, `:ref:`,
`.. autoclass::`, `.. versionadded::`). Each one a document uses is registered
before parsing: roles become inline code (or their title text), directives keep
their arguments and content as text, so nothing raises and no paragraph is lost.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, ClassVar

from docutils import nodes
from docutils.core import publish_doctree, publish_from_doctree
from docutils.parsers.rst import Directive, directives, roles
from docutils.statemachine import StringList
from docutils.utils import unescape
from docutils.writers import html5_polyglot

from docshelf.errors import ExtractError

# `:name:` or `:domain:name:` right before a backquote, as roles are written.
_ROLE_USE = re.compile(r"(?<![\w`]):((?:[\w.+-]+:)*[\w.+-]+):`")
_DIRECTIVE_USE = re.compile(r"^[ \t]*\.\.[ \t]+([\w:.+-]+)::", re.MULTILINE)
# `title <target>` inside a role, as :ref: and :doc: write a link with its own text.
_EXPLICIT_TITLE = re.compile(r"^(.+?)\s*<[^<>]*>$", re.DOTALL)
_PRE_LANG = re.compile(r'<pre([^>]*?) lang=("[^"]*")')

# Roles whose text is prose (a cross-reference's title), not code.
TEXT_ROLES = frozenset({"ref", "doc", "term", "numref", "std:ref", "std:doc", "std:term", "guilabel", "menuselection",
                        "abbr", "dfn", "download", "pep", "rfc"})
# Directives whose content is code in the language given as argument.
CODE_DIRECTIVES = ("code-block", "sourcecode", "literalinclude")
# Directives that only steer Sphinx (tables of contents, indexes) and carry no text of their own.
SILENT_DIRECTIVES = frozenset({"toctree", "index", "highlight", "currentmodule", "module", "py:module",
                               "py:currentmodule", "automodule", "autosummary", "tabularcolumns", "only",
                               "meta", "include"})

SETTINGS: dict[str, Any] = {
    "report_level": 5,  # never print system messages; broken markup degrades to text
    "halt_level": 5,
    "file_insertion_enabled": False,  # `.. include::` and `:file:` would read files off this machine
    "raw_enabled": False,
    "syntax_highlight": "none",  # plain <pre>, the language goes on as a class
    "doctitle_xform": False,  # keep the first heading a section with its own anchor
    "initial_header_level": 1,
    "input_encoding": "unicode",
    "output_encoding": "unicode",
    "embed_stylesheet": False,
    "stylesheet_path": "",
    "warning_stream": False,
}


def rst_to_html(text: str, url: str) -> str:
    """Return the HTML docutils writes for a reStructuredText document, Sphinx markup degraded to text.

    Raises:
        ExtractError: docutils cannot parse the document at all.
    """
    _register_unknown(text)
    try:
        doctree = publish_doctree(text, source_path=url, settings_overrides=SETTINGS)
        _drop_system_messages(doctree)
        _tag_code_languages(doctree, _default_language(text))
        writer = html5_polyglot.Writer()
        writer.translator_class = _Translator
        html = str(publish_from_doctree(doctree, writer=writer, settings_overrides=SETTINGS))
    except Exception as exc:  # docutils raises many kinds on pathological input; the page fails, the crawl goes on
        raise ExtractError(url, f"unreadable reStructuredText: {exc}") from exc
    # docutils' HTML5 writer puts a code block's language in `lang`; data-lang is what the HTML extractor reads.
    return _PRE_LANG.sub(r'<pre\1 data-lang=\2', html)


class _Translator(html5_polyglot.HTMLTranslator):
    """docutils' HTML5 translator, with inline literals as `<code>` (it writes nested spans the extractor
    would read as plain text)."""

    def visit_literal(self, node: nodes.literal) -> None:
        self.body.append(f"<code>{self.encode(node.astext())}</code>")
        raise nodes.SkipNode


def _register_unknown(text: str) -> None:
    """Register every role and directive `text` uses that docutils does not know, as a text-keeping stand-in."""
    for name in set(_ROLE_USE.findall(text)):
        if roles._roles.get(name) is None and name not in roles._role_registry:
            roles.register_local_role(name, _text_role if name in TEXT_ROLES else _code_role)
    for name in set(_DIRECTIVE_USE.findall(text)):
        if name in ("code-block", "sourcecode"):
            directives.register_directive(name, CodeBlock)
        elif name == "highlight":
            directives.register_directive(name, Highlight)
        elif name in SILENT_DIRECTIVES and name not in ("include", "meta"):
            directives.register_directive(name, Silent)
        elif name not in directives._directives and name not in directives._directive_registry:
            directives.register_directive(name, KeepText)


def _code_role(name: str, rawtext: str, text: str, lineno: int, inliner: Any,
               options: dict | None = None, content: Sequence[str] = ()) -> tuple[list[nodes.Node], list]:
    """Render a Sphinx cross-reference to code (`:func:`~pkg.f``) as inline code: `f`."""
    target = _title(unescape(text)).lstrip("~!.")
    if unescape(text).startswith("~"):
        target = target.rsplit(".", 1)[-1]
    return [nodes.literal(rawtext, target)], []


def _text_role(name: str, rawtext: str, text: str, lineno: int, inliner: Any,
               options: dict | None = None, content: Sequence[str] = ()) -> tuple[list[nodes.Node], list]:
    """Render a prose cross-reference (`:ref:`Installation <install>``) as its title text."""
    return [nodes.Text(_title(unescape(text)))], []


def _title(text: str) -> str:
    """Return the title of `title <target>`, or the whole text."""
    match = _EXPLICIT_TITLE.match(text.strip())
    return match.group(1) if match else text.strip()


class CodeBlock(Directive):
    """`.. code-block:: python` (Sphinx): a literal block tagged with its language."""

    optional_arguments = 1
    final_argument_whitespace = False
    has_content = True
    option_spec: ClassVar[dict] = {"linenos": directives.flag, "lineno-start": int, "emphasize-lines": str,
                                   "caption": str, "name": str, "dedent": str, "force": directives.flag,
                                   "class": str}

    def run(self) -> list[nodes.Node]:
        code = "\n".join(self.content)
        block = nodes.literal_block(code, code)
        block["classes"] += ["code", *(self.arguments[:1] or [])]
        return [block]


class Highlight(Directive):
    """`.. highlight:: lang` sets the language of the `::` blocks after it; read by `_default_language`."""

    required_arguments = 1
    option_spec: ClassVar[dict] = {"linenothreshold": str, "force": directives.flag}

    def run(self) -> list[nodes.Node]:
        return []


class Silent(Directive):
    """A Sphinx directive that steers the build and holds no prose (`toctree`, `index`)."""

    optional_arguments = 10
    final_argument_whitespace = True
    has_content = True
    option_spec = None

    def run(self) -> list[nodes.Node]:
        return []


class KeepText(Directive):
    """Any other directive docutils lacks (`autoclass`, `versionadded`, `tab`): its arguments and content, kept.

    The arguments (`pkg.Class(arg)`, `2.1`) become an inline-code paragraph; the content is
    parsed as reStructuredText so nested markup keeps its shape.
    """

    optional_arguments = 10
    final_argument_whitespace = True
    has_content = True
    option_spec = None

    def run(self) -> list[nodes.Node]:
        out: list[nodes.Node] = []
        label, prose = " ".join(self.arguments).strip(), ""
        # `autoclass`/`py:function` arguments are a signature; `versionadded 2.1 Text` needs its name to mean
        # anything, and its words after the first are prose.
        if not (self.name.startswith("auto") or ":" in self.name):
            first, _, prose = label.partition(" ")
            label = f"{self.name} {first}".strip()
        if label:
            out.append(nodes.paragraph("", "", nodes.literal(label, label)))
        lines = StringList([prose] if prose.strip() else []) + self.content
        if lines:
            container = nodes.container()
            self.state.nested_parse(lines, self.content_offset, container)
            out.extend(container.children)
        return out


def _default_language(text: str) -> str:
    """Return the language a `.. highlight::` directive sets for `::` blocks, or ""."""
    match = re.search(r"^[ \t]*\.\.[ \t]+highlight::[ \t]*(\S+)", text, re.MULTILINE)
    return match.group(1) if match else ""


def _tag_code_languages(doctree: nodes.document, default: str) -> None:
    """Put `language-x` on each literal block, as the HTML extractor reads code languages."""
    for block in doctree.findall(nodes.literal_block):
        classes = block["classes"]
        language = next((c for c in classes if c not in ("code", "literal-block")), "") if "code" in classes else ""
        language = language or default
        if language:
            block["classes"] = [c for c in classes if c != language] + [f"language-{language}"]


def _drop_system_messages(doctree: nodes.document) -> None:
    """Remove docutils' complaints (they would show as text), keeping what they complain about."""
    for message in list(doctree.findall(nodes.system_message)):
        message.parent.remove(message)
    for problem in list(doctree.findall(nodes.problematic)):
        problem.parent.replace(problem, nodes.Text(problem.astext()))
